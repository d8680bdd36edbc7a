//! `imagePullSecrets` read from the API at pull time: the agent gets each Secret a Pod names from the
//! Pod's namespace (RBAC: `get` on secrets, nothing else), never caches it (a rotated secret is used on
//! the next pull) and never logs its data.

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use crate::pod::store_images::{PullSecretSource, ReadSecretError, SecretData};

/// Reads pull secrets with the agent's client.
pub struct ApiPullSecrets {
    client: kube::Client,
}

impl ApiPullSecrets {
    /// A source over `client`.
    pub fn new(client: kube::Client) -> Self {
        ApiPullSecrets { client }
    }
}

impl PullSecretSource for ApiPullSecrets {
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<SecretData>, ReadSecretError>> {
        Box::pin(async move {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
            let secret = api.get_opt(name).await.map_err(|e| ReadSecretError {
                namespace: namespace.into(),
                name: name.into(),
                error: Box::new(e),
            })?;
            Ok(secret.map(secret_data))
        })
    }
}

/// Type and decoded data of a Secret.
fn secret_data(secret: Secret) -> SecretData {
    SecretData {
        secret_type: secret.type_.unwrap_or_else(|| "Opaque".into()),
        data: secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| (key, value.0))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    #[test]
    fn secrets_keep_their_type_and_decoded_data() {
        let secret = Secret {
            type_: Some("kubernetes.io/dockerconfigjson".into()),
            data: Some(BTreeMap::from([(
                ".dockerconfigjson".to_owned(),
                ByteString(b"{}".to_vec()),
            )])),
            ..Secret::default()
        };
        let data = secret_data(secret);
        assert_eq!(data.secret_type, "kubernetes.io/dockerconfigjson");
        assert_eq!(
            data.data.get(".dockerconfigjson").map(Vec::as_slice),
            Some(&b"{}"[..])
        );
        assert_eq!(secret_data(Secret::default()).secret_type, "Opaque");
    }
}
