//! A dashboard visitor over plain HTTP: keeps cookies, does not follow redirects (like a
//! browser's network log), and reads what tests need off the server-rendered pages.

use crate::Stack;
use std::collections::HashMap;

/// The password every test account is created with.
pub const PASSWORD: &str = "correct horse battery";

pub struct Visitor {
    http: reqwest::Client,
    base: String,
    pub cookies: HashMap<String, String>,
}

/// A response as the visitor saw it.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    /// The value of the first `name="csrf"` hidden input.
    pub fn csrf(&self) -> String {
        self.after("name=\"csrf\" value=\"")
            .expect("a csrf field on the page")
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    }

    /// The text of the element with id `id`, such as a key or link shown once.
    pub fn shown(&self, id: &str) -> String {
        self.after(&format!("id=\"{id}\">"))
            .unwrap_or_else(|| panic!("no #{id} on the page: {}", self.body))
            .split('<')
            .next()
            .unwrap()
            .to_owned()
    }

    /// The targets of the forms whose action starts with `prefix`, in page order.
    pub fn actions(&self, prefix: &str) -> Vec<String> {
        let marker = format!("action=\"{prefix}");
        self.body
            .match_indices(&marker)
            .map(|(i, _)| self.body[i + 8..].split('"').next().unwrap().to_owned())
            .collect()
    }

    /// The targets of the forms whose action starts with `prefix` in the table row that
    /// mentions `text`.
    pub fn row_actions(&self, text: &str, prefix: &str) -> Vec<String> {
        let row = self
            .body
            .split("<tr>")
            .map(|rest| rest.split("</tr>").next().unwrap_or_default())
            .find(|row| row.contains(text))
            .unwrap_or_else(|| panic!("no row mentions {text}: {}", self.body));
        Page {
            status: self.status,
            location: None,
            body: row.to_owned(),
        }
        .actions(prefix)
    }

    /// The user id of `email` on a members page, from their row (which has no forms
    /// when nothing may be done to them, as for a sole owner).
    pub fn member_id(&self, email: &str) -> String {
        let row = self
            .body
            .split("<tr>")
            .map(|rest| rest.split("</tr>").next().unwrap_or_default())
            .find(|row| row.contains(email))
            .unwrap_or_else(|| panic!("no row mentions {email}: {}", self.body));
        let (_, id) = row
            .split_once("data-member=\"")
            .unwrap_or_else(|| panic!("no member id in the row of {email}: {row}"));
        id.split('"').next().unwrap().to_owned()
    }

    /// The path of the invitation link shown once on a members page.
    pub fn invitation_path(&self) -> String {
        let link = self.shown("invitation-link");
        let path = &link[link.find("/invite/").expect("an invitation path")..];
        assert_eq!(path.len(), "/invite/".len() + 64, "{link}");
        path.to_owned()
    }

    /// The text of the set-up page's `<pre data-KIND="LANGUAGE">` (`kind` is `snippet`,
    /// `install` or `run`) exactly as its copy button copies it: the element's text, its
    /// markup dropped and its entities decoded.
    pub fn snippet(&self, kind: &str, language: &str) -> String {
        let marker = format!("data-{kind}=\"{language}\">");
        let inner = self
            .after(&marker)
            .unwrap_or_else(|| panic!("no {marker} on the page: {}", self.body));
        let inner = &inner[..inner.find("</pre>").expect("the snippet's </pre>")];
        let mut text = String::with_capacity(inner.len());
        let mut in_tag = false;
        for c in inner.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        decode_entities(&text)
    }

    fn after(&self, marker: &str) -> Option<&str> {
        self.body
            .find(marker)
            .map(|start| &self.body[start + marker.len()..])
    }
}

impl Visitor {
    pub fn new(stack: &Stack) -> Self {
        Self::at(&stack.query_url(""))
    }

    /// A visitor of one query replica (another than the stack's own, say).
    pub fn of(query: std::net::SocketAddr) -> Self {
        Self::at(&format!("http://{query}"))
    }

    /// A visitor of the dashboard at `base` (`http://host:port`), such as a query
    /// replica a test started with a config of its own.
    pub fn at(base: &str) -> Self {
        Visitor {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.trim_end_matches('/').to_owned(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, response: reqwest::Response) -> Page {
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned()),
            body: response.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            )
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    /// Signs up with [`PASSWORD`]; returns the set-up page (or the form's error).
    pub async fn sign_up(&mut self, email: &str, organisation: &str) -> Page {
        let csrf = self.get("/signup").await.csrf();
        self.post(
            "/signup",
            &[
                ("csrf", &csrf),
                ("email", email),
                ("organisation", organisation),
                ("password", PASSWORD),
            ],
        )
        .await
    }

    /// Logs in; returns the answer (a redirect to `/` on success).
    pub async fn log_in(&mut self, email: &str, password: &str) -> Page {
        let csrf = self.get("/login").await.csrf();
        self.post(
            "/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }

    /// Posts a form found on `page` at `action` with its CSRF token and `fields`.
    pub async fn submit(&mut self, page: &Page, action: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = page.csrf();
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post(action, &form).await
    }
}

/// Decodes the character references a template engine writes (`&#60;`, `&#x27;`, `&lt;`,
/// `&quot;`…); anything else is kept as it is.
fn decode_entities(text: &str) -> String {
    let mut decoded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        decoded.push_str(&rest[..at]);
        rest = &rest[at..];
        let reference = rest[1..].find(';').map(|end| &rest[1..end + 1]);
        let character = reference.and_then(|r| match r {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => r
                .strip_prefix("#x")
                .or_else(|| r.strip_prefix("#X"))
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| r.strip_prefix('#').map(str::parse::<u32>))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        });
        match (reference, character) {
            (Some(reference), Some(c)) => {
                decoded.push(c);
                rest = &rest[reference.len() + 2..];
            }
            _ => {
                decoded.push('&');
                rest = &rest[1..];
            }
        }
    }
    decoded.push_str(rest);
    decoded
}

#[cfg(test)]
mod tests {
    #[test]
    fn character_references_are_decoded() {
        assert_eq!(
            super::decode_entities(
                "a &#60;b&#62; &#38; &#39;c&#39; &#x27; &quot;d&quot; &amp;lt; & e"
            ),
            "a <b> & 'c' ' \"d\" &lt; & e"
        );
    }
}
