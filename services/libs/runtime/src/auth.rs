//! Finding the API key of a request, over HTTP headers or gRPC metadata alike:
//! `x-api-key: KEY` or `Authorization: Bearer KEY`.

/// The key from header lookups, `None` when neither header carries one.
pub fn api_key<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Option<&'a str> {
    if let Some(key) = header("x-api-key").map(str::trim).filter(|k| !k.is_empty()) {
        return Some(key);
    }
    let authorization = header("authorization")?.trim();
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_comes_from_either_header() {
        let from =
            |name: &'static str, value: &'static str| move |h: &str| (h == name).then_some(value);
        assert_eq!(api_key(from("x-api-key", " k1 ")), Some("k1"));
        assert_eq!(api_key(from("authorization", "Bearer k2")), Some("k2"));
        assert_eq!(api_key(from("authorization", "bearer k3")), Some("k3"));
        assert_eq!(api_key(from("authorization", "Basic abc")), None);
        assert_eq!(api_key(from("x-api-key", "")), None);
        assert_eq!(api_key(|_| None), None);
    }
}
