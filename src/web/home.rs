use actix_web::get;
use askama::Template;
use askama_web::WebTemplate;

use super::Chrome;

#[derive(Template, WebTemplate)]
#[template(path = "pages/home.html")]
struct Landing {
    chrome: Chrome,
}

#[get("/")]
pub(super) async fn landing(chrome: Chrome) -> Landing {
    Landing { chrome }
}
