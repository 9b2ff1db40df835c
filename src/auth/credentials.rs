//! Reading an `Authorization` header the way DRF does: `Basic …` as `BasicAuthentication`,
//! `Token …` (and `Bearer …`, what OAuth-minded clients send) as `TokenAuthentication`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A username and password from a request. The password never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The claimed username.
    pub username: String,
    /// The offered password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why a header yielded no credentials; `Display` gives DRF's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// No header, or a scheme other than Basic.
    #[error("Authentication credentials were not provided.")]
    Missing,
    /// `Basic` with nothing after it.
    #[error("Invalid basic header. No credentials provided.")]
    Empty,
    /// `Basic a b`.
    #[error("Invalid basic header. Credentials string should not contain spaces.")]
    ContainsSpaces,
    /// Not base64, not text, or no `:` inside.
    #[error("Invalid basic header. Credentials not correctly base64 encoded.")]
    BadEncoding,
    /// `Token` (or `Bearer`) with nothing after it.
    #[error("Invalid token header. No credentials provided.")]
    TokenEmpty,
    /// `Token a b`.
    #[error("Invalid token header. Token string should not contain spaces.")]
    TokenContainsSpaces,
    /// A key that is not UTF-8.
    #[error("Invalid token header. Token string should not contain invalid characters.")]
    TokenInvalidCharacters,
}

/// What an `Authorization` header offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A username and password.
    Basic(Credentials),
    /// A device token's key, as sent (unchecked).
    Token(String),
}

/// Parses the raw `Authorization` header value, if there is one, as basic credentials or a
/// token; any other scheme is as good as none.
pub fn parse_authorization(header: Option<&[u8]>) -> Result<Credential, HeaderError> {
    let raw = header.ok_or(HeaderError::Missing)?;
    let mut parts = raw
        .split(u8::is_ascii_whitespace)
        .filter(|part| !part.is_empty());
    let scheme = parts.next().unwrap_or_default();
    if scheme.eq_ignore_ascii_case(b"token") || scheme.eq_ignore_ascii_case(b"bearer") {
        let key = parts.next().ok_or(HeaderError::TokenEmpty)?;
        if parts.next().is_some() {
            return Err(HeaderError::TokenContainsSpaces);
        }
        let key = std::str::from_utf8(key).map_err(|_| HeaderError::TokenInvalidCharacters)?;
        return Ok(Credential::Token(key.to_owned()));
    }
    parse_basic(header).map(Credential::Basic)
}

/// Parses the raw `Authorization` header value, if there is one.
pub fn parse_basic(header: Option<&[u8]>) -> Result<Credentials, HeaderError> {
    let header = header.ok_or(HeaderError::Missing)?;
    let mut parts = header
        .split(u8::is_ascii_whitespace)
        .filter(|part| !part.is_empty());
    match parts.next() {
        Some(scheme) if scheme.eq_ignore_ascii_case(b"basic") => {}
        _ => return Err(HeaderError::Missing),
    }
    let encoded = parts.next().ok_or(HeaderError::Empty)?;
    if parts.next().is_some() {
        return Err(HeaderError::ContainsSpaces);
    }
    let decoded = STANDARD
        .decode(encoded)
        .map_err(|_| HeaderError::BadEncoding)?;
    // DRF tries UTF-8 and then Latin-1, which maps every byte to the code point of that value.
    let text = String::from_utf8(decoded)
        .unwrap_or_else(|error| error.into_bytes().iter().map(|&b| char::from(b)).collect());
    let (username, password) = text.split_once(':').ok_or(HeaderError::BadEncoding)?;
    Ok(Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> Result<Credentials, HeaderError> {
        parse_basic(Some(value.as_bytes()))
    }

    #[test]
    fn a_well_formed_header_yields_username_and_password() {
        let credentials = header("Basic YWRtaW46cGE6c3M=").unwrap();
        assert_eq!(credentials.username, "admin");
        assert_eq!(credentials.password, "pa:ss");
        assert_eq!(header("basic YWRtaW46cGFzcw==").unwrap().password, "pass");
    }

    #[test]
    fn each_malformed_header_gets_its_drf_message() {
        assert_eq!(parse_basic(None), Err(HeaderError::Missing));
        assert_eq!(header("Bearer abc"), Err(HeaderError::Missing));
        assert_eq!(header(""), Err(HeaderError::Missing));
        assert_eq!(header("Basic"), Err(HeaderError::Empty));
        assert_eq!(header("Basic a b"), Err(HeaderError::ContainsSpaces));
        assert_eq!(header("Basic !!!"), Err(HeaderError::BadEncoding));
        // "admin" without a colon
        assert_eq!(header("Basic YWRtaW4="), Err(HeaderError::BadEncoding));
    }

    #[test]
    fn token_headers_yield_the_key_or_drfs_message() {
        let token = |value: &[u8]| parse_authorization(Some(value));
        assert_eq!(token(b"Token abc"), Ok(Credential::Token("abc".into())));
        assert_eq!(token(b"bearer  abc "), Ok(Credential::Token("abc".into())));
        assert_eq!(token(b"Token"), Err(HeaderError::TokenEmpty));
        assert_eq!(token(b"Bearer a b"), Err(HeaderError::TokenContainsSpaces));
        assert_eq!(
            token(b"Token \xff\xfe"),
            Err(HeaderError::TokenInvalidCharacters)
        );
        assert_eq!(token(b"Digest abc"), Err(HeaderError::Missing));
        assert!(matches!(
            token(b"Basic YWRtaW46cGFzcw=="),
            Ok(Credential::Basic(_))
        ));
    }

    #[test]
    fn latin1_credentials_decode_as_drf_does() {
        // "jos\xe9:pw" is not UTF-8
        let credentials = header("Basic am9z6Tpwdw==").unwrap();
        assert_eq!(credentials.username, "josé");
    }

    #[test]
    fn debug_output_hides_the_password() {
        let credentials = header("Basic YWRtaW46c2VjcmV0").unwrap();
        assert!(!format!("{credentials:?}").contains("secret"));
    }
}
