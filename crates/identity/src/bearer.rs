//! Taking the bearer token out of a request (RFC 6750), without HTTP types: the
//! server passes the raw `Authorization` header and the raw query string.

use crate::error::TokenError;
use crate::limits::TOKEN_BYTES_MAX;

/// Longest scheme name repeated in an error message.
const SCHEME_CHARS_MAX: usize = 20;

/// The token of an `Authorization: Bearer <token>` header.
///
/// Refuses, in this order: a token in the query string as `access_token` (even
/// when a header is present too: the token is already in logs and must be treated
/// as leaked), a missing header, a scheme other than `Bearer` (case-insensitive),
/// and a credential that is not one RFC 6750 `b64token`.
pub fn bearer_from_request_parts<'a>(
    authorization_header: Option<&'a str>,
    query: Option<&str>,
) -> Result<&'a str, TokenError> {
    if query.is_some_and(query_has_access_token) {
        return Err(TokenError::QueryStringToken);
    }
    let header = authorization_header.map(str::trim).filter(|h| !h.is_empty()).ok_or(TokenError::Missing)?;
    let (scheme, credential) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("Bearer") {
        // Name the scheme only when it looks like one: a header without the space
        // would otherwise have us repeat the start of a credential.
        let looks_like_scheme = scheme.len() <= SCHEME_CHARS_MAX
            && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !scheme.to_ascii_lowercase().starts_with("bearer");
        if looks_like_scheme {
            return Err(TokenError::UnsupportedScheme(scheme.to_owned()));
        }
        return Err(TokenError::Malformed("the `Authorization` header must be `Bearer <token>`".to_owned()));
    }
    let token = credential.trim_start_matches(' ');
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    if token.len() > TOKEN_BYTES_MAX {
        return Err(TokenError::Malformed("it is longer than 8 KiB".to_owned()));
    }
    if !is_b64token(token) {
        return Err(TokenError::Malformed(
            "the `Authorization` header must be `Bearer` and one token with no spaces".to_owned(),
        ));
    }
    Ok(token)
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

/// True when any query parameter is named `access_token`, compared after
/// percent-decoding the name (so `access%5Ftoken` is caught too).
fn query_has_access_token(query: &str) -> bool {
    let query = query.strip_prefix('?').unwrap_or(query);
    query.split(['&', ';']).any(|pair| {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        percent_decoded_eq(name, b"access_token")
    })
}

/// Compares a percent-encoded (and `+`-for-space) name with `expected`, without
/// allocating.
fn percent_decoded_eq(encoded: &str, expected: &[u8]) -> bool {
    let mut bytes = encoded.bytes();
    let mut expected = expected.iter().copied();
    loop {
        let decoded = match bytes.next() {
            None => return expected.next().is_none(),
            Some(b'%') => {
                let (Some(hi), Some(lo)) =
                    (bytes.next().and_then(hex_value), bytes.next().and_then(hex_value))
                else {
                    return false;
                };
                hi << 4 | lo
            }
            Some(b'+') => b' ',
            Some(b) => b,
        };
        if expected.next() != Some(decoded) {
            return false;
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names_are_percent_decoded() {
        assert!(query_has_access_token("a=1&access_token=x"));
        assert!(query_has_access_token("access%5Ftoken=x"));
        assert!(query_has_access_token("?access_token"));
        assert!(!query_has_access_token("access_tokens=x&token=access_token"));
        assert!(!query_has_access_token("access%5"));
    }
}
