//! Docker config `identitytoken`s: OAuth2 refresh tokens exchanged for a pull-scoped access token at the
//! token endpoint the registry names in its `WWW-Authenticate: Bearer realm=...` challenge (the flow of
//! docker's and containerd's authorizers, `grant_type=refresh_token`). oci-client then sends the access
//! token as a bearer token.
//!
//! This module must not log or return either token in an error.

use std::time::Duration;

use serde::Deserialize;

use super::registry::Config;
use super::Target;
use crate::image::Error;

/// OAuth2 `client_id` sent with the refresh token.
const CLIENT_ID: &str = "peapod";
const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest token response read.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The parameters of a `Bearer` challenge.
#[derive(Debug, Default, PartialEq, Eq)]
struct Challenge {
    realm: String,
    service: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    token: String,
}

/// Exchanges `refresh_token` for an access token that may pull `target`'s repository.
pub(super) async fn exchange(target: &Target, config: &Config, refresh_token: &str) -> Result<String, Error> {
    let failed = |message: String| Error::AccessDenied {
        reference: target.shown.clone(),
        message: format!("identitytoken exchange failed: {message}"),
    };
    let client = http_client(config).map_err(|e| failed(crate::sys::chain(&e)))?;
    let ping = format!("{}://{}/v2/", config.scheme(), target.registry);
    let response = client
        .get(&ping)
        .send()
        .await
        .map_err(|e| Error::RegistryUnreachable {
            registry: target.registry.clone(),
            message: crate::sys::chain(&e),
        })?;
    let challenge = response
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(parse_bearer_challenge)
        .ok_or_else(|| failed("the registry offers no Bearer token endpoint".into()))?;
    if !(challenge.realm.starts_with("https://") || challenge.realm.starts_with("http://")) {
        return Err(failed(format!(
            "token realm {:?} is not an http(s) URL",
            challenge.realm
        )));
    }
    let scope = format!("repository:{}:pull", target.reference.path());
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", CLIENT_ID),
        ("scope", scope.as_str()),
        ("refresh_token", refresh_token),
    ];
    if let Some(service) = &challenge.service {
        form.push(("service", service));
    }
    let response = client
        .post(&challenge.realm)
        .form(&form)
        .send()
        .await
        .map_err(|e| failed(crate::sys::chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!("{} answered {status}", challenge.realm)));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| failed(crate::sys::chain(&e)))?;
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(failed("token response too large".into()));
    }
    let parsed: TokenResponse = serde_json::from_slice(&body)
        .map_err(|_| failed("token response is not the expected JSON".into()))?;
    match (parsed.access_token, parsed.token) {
        (access, _) if !access.is_empty() => Ok(access),
        (_, token) if !token.is_empty() => Ok(token),
        _ => Err(failed("token response holds no access_token".into())),
    }
}

fn http_client(config: &Config) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    for cert in config.certs() {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&cert.data)?);
    }
    builder.build()
}

/// Parses `Bearer realm="...",service="...",scope="..."`; `None` for other schemes or without a realm.
fn parse_bearer_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut challenge = Challenge::default();
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                (quoted.get(..end)?, quoted.get(end + 1..)?)
            }
            None => after.split_once(',').map_or((after, ""), |(v, a)| (v, a)),
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "realm" => challenge.realm = value.to_owned(),
            "service" => challenge.service = Some(value.to_owned()),
            _ => {}
        }
        rest = after.trim_start_matches([',', ' ']);
    }
    (!challenge.realm.is_empty()).then_some(challenge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::PullOptions;

    /// A registry that demands a bearer token from its own token endpoint, which accepts one refresh token.
    async fn token_server() -> String {
        use axum::http::{header, StatusCode};
        use axum::response::IntoResponse;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let host = listener.local_addr().expect("addr").to_string();
        let realm = format!("http://{host}/token");
        let ping = move || async move {
            let challenge = format!("Bearer realm=\"{realm}\",service=\"test-registry\"");
            (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)]).into_response()
        };
        let token = |body: String| async move {
            let want = [
                "grant_type=refresh_token",
                "client_id=peapod",
                "scope=repository%3Ateam%2Fapp%3Apull",
                "refresh_token=the-refresh-token",
                "service=test-registry",
            ];
            if want.iter().all(|w| body.split('&').any(|p| p == *w)) {
                (
                    StatusCode::OK,
                    r#"{"access_token": "the-access-token", "expires_in": 300}"#,
                )
                    .into_response()
            } else {
                (StatusCode::UNAUTHORIZED, "bad refresh token").into_response()
            }
        };
        let app = axum::Router::new()
            .route("/v2/", axum::routing::get(ping))
            .route("/token", axum::routing::post(token));
        tokio::spawn(async move { axum::serve(listener, app).await });
        host
    }

    #[tokio::test]
    async fn identity_tokens_are_exchanged_for_access_tokens() {
        let host = token_server().await;
        let options = PullOptions::default();
        let target = super::super::pull_target(&format!("{host}/team/app:1"), &options).expect("target");
        let config = super::super::registry::client_config(&target.registry, &options).expect("config");
        let access = exchange(&target, &config, "the-refresh-token")
            .await
            .expect("exchange");
        assert_eq!(access, "the-access-token");
        let refused = exchange(&target, &config, "stolen").await.expect_err("refused");
        let message = refused.to_string();
        assert!(message.contains("identitytoken exchange failed"), "{message}");
        assert!(!message.contains("stolen"), "no token in messages: {message}");
    }

    #[test]
    fn bearer_challenges_parse() {
        let got = parse_bearer_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a:pull""#,
        );
        assert_eq!(
            got,
            Some(Challenge {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry.example.com".into()),
            })
        );
        assert_eq!(
            parse_bearer_challenge("bearer realm=http://127.0.0.1:1/t")
                .map(|c| c.realm)
                .as_deref(),
            Some("http://127.0.0.1:1/t")
        );
        assert_eq!(parse_bearer_challenge(r#"Basic realm="test""#), None);
        assert_eq!(parse_bearer_challenge(r#"Bearer service="x""#), None);
        assert_eq!(parse_bearer_challenge(r#"Bearer realm="unterminated"#), None);
    }
}
