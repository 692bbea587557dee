//! Pages of a list: how many items, and where the next page starts.
//!
//! A cursor is the sort key of the last item shown (ending in something
//! unique, like its id), so a page never repeats or skips an item when others
//! are added meanwhile (keyset paging). To clients it is opaque: base64url of
//! the key as JSON.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
/// Items on a page when the caller does not say.
pub const DEFAULT_LIMIT: u32 = 50;
/// The most items one page holds.
pub const MAX_LIMIT: u32 = 500;

/// Where a page starts: after the item with this sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor<K>(pub K);

impl<K: Serialize + DeserializeOwned> Cursor<K> {
    pub fn encode(&self) -> String {
        // Keys are plain data (instants, text, ids): they always serialise.
        let json = serde_json::to_vec(&self.0).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// `None` for anything this list did not hand out.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        serde_json::from_slice(&bytes).ok().map(Self)
    }
}

/// A request for one page: at most `limit` items, after `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<K> {
    pub limit: u32,
    pub after: Option<Cursor<K>>,
}

impl<K> Default for Page<K> {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

/// Why a page cannot be read: the field and the reason.
#[derive(Debug, PartialEq, Eq)]
pub struct PageError {
    pub field: &'static str,
    pub reason: String,
}

impl<K: Serialize + DeserializeOwned> Page<K> {
    /// From what a caller sent: `limit` 1 to 500 (50 when absent), and a cursor
    /// this list handed out.
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, PageError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(PageError {
                field: "limit",
                reason: format!("must be 1 to {MAX_LIMIT}"),
            });
        }
        let after = match cursor.filter(|c| !c.trim().is_empty()) {
            None => None,
            Some(text) => Some(Cursor::decode(text).ok_or_else(|| PageError {
                field: "cursor",
                reason: "is not a cursor this list handed out: start again without it".into(),
            })?),
        };
        Ok(Self { limit, after })
    }

    /// Rows to ask the database for: one more than the page, to know whether
    /// another page follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

/// One page of items and the cursor of the next, if there is one.
#[derive(Debug)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Paged<T> {
    /// Cuts rows fetched with [`Page::fetch`] to the page; the next cursor is
    /// the last item shown, when more rows were found.
    pub fn cut<K: Serialize + DeserializeOwned>(
        mut rows: Vec<T>,
        limit: u32,
        cursor_of: impl Fn(&T) -> Cursor<K>,
    ) -> Self {
        let limit = limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last().map(|last| cursor_of(last).encode())
        } else {
            None
        };
        Self { items: rows, next }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paged<U> {
        Paged {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }

    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Paged<U>, E> {
        Ok(Paged {
            items: self.items.into_iter().map(f).collect::<Result<_, _>>()?,
            next: self.next,
        })
    }
}

/// A page of a short list read whole (teams, tokens, accounts, pools): sorted
/// by `key`, from after the cursor's key.
pub fn page_of<T, K>(mut items: Vec<T>, page: &Page<K>, key: impl Fn(&T) -> K) -> Paged<T>
where
    K: Ord + Serialize + DeserializeOwned,
{
    items.sort_by_key(|item| key(item));
    let rows = items
        .into_iter()
        .filter(|item| page.after.as_ref().is_none_or(|c| key(item) > c.0))
        .take(page.limit as usize + 1)
        .collect();
    Paged::cut(rows, page.limit, |item| Cursor(key(item)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    #[test]
    fn a_cursor_comes_back_as_it_was_handed_out() {
        let at: DateTime<Utc> = "2026-12-03T10:00:00.123456Z".parse().unwrap();
        let c = Cursor((at, Uuid::new_v4()));
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
    }

    #[test]
    fn a_cursor_of_another_shape_or_made_up_is_refused_naming_the_field() {
        let by_name = Cursor(("payments".to_owned(), Uuid::new_v4())).encode();
        let err = Page::<(DateTime<Utc>, Uuid)>::parse(None, Some(&by_name)).unwrap_err();
        assert_eq!(err.field, "cursor");
        for junk in ["%%%", "abc", "eyJ9", "W10"] {
            assert_eq!(
                Page::<String>::parse(None, Some(junk)).unwrap_err().field,
                "cursor",
                "{junk}"
            );
        }
    }

    #[test]
    fn limits_outside_one_to_five_hundred_are_refused() {
        assert_eq!(Page::<String>::parse(None, None).unwrap().limit, 50);
        assert_eq!(Page::<String>::parse(Some(500), None).unwrap().limit, 500);
        for bad in [0, 501, u32::MAX] {
            assert_eq!(
                Page::<String>::parse(Some(bad), None).unwrap_err().field,
                "limit"
            );
        }
    }

    #[test]
    fn pages_of_a_list_read_whole_cover_it_once_in_order() {
        let names: Vec<String> = ["d", "a", "c", "b", "e"].map(String::from).to_vec();
        let mut page = Page::<String>::parse(Some(2), None).unwrap();
        let mut seen = Vec::new();
        loop {
            let p = page_of(names.clone(), &page, |n| n.clone());
            seen.extend(p.items);
            match p.next {
                Some(next) => page = Page::parse(Some(2), Some(&next)).unwrap(),
                None => break,
            }
        }
        assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn a_page_says_whether_another_follows() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let cursor = |id: &Uuid| Cursor(*id);
        let full = Paged::cut(ids.clone(), 2, cursor);
        assert_eq!(full.items, ids[..2]);
        let next = Cursor::<Uuid>::decode(full.next.as_deref().unwrap()).unwrap();
        assert_eq!(next.0, ids[1]);
        let last = Paged::cut(ids[..2].to_vec(), 2, cursor);
        assert_eq!(last.next, None);
    }
}
