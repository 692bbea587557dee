use askama::Template;
use askama_web::WebTemplate;

use super::Chrome;

#[derive(Template, WebTemplate)]
#[template(path = "pages/home.html")]
pub(super) struct Landing {
    chrome: Chrome,
}

pub(super) async fn landing(chrome: Chrome) -> Landing {
    Landing { chrome }
}
