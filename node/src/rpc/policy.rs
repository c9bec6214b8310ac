//! Who may call what: one table, [`POLICY`], enforced by one RPC middleware,
//! [`Authorize`], before any method runs, for HTTP and WebSocket alike and
//! for each call of a batch. A method missing from the table is refused,
//! and the server does not start with a registered method the table does
//! not classify ([`unclassified`]).
//!
//! The credentials come from the HTTP request (the WebSocket upgrade for a
//! WebSocket connection): [`credentials_layer`] checks the headers once and
//! leaves a [`Caller`] in the request's extensions, which jsonrpsee hands
//! to every call. [`Authorize`] replaces it with what the call may rely on,
//! [`Authorized`], which the methods that narrow their answers to the
//! caller read (`with_extensions`).

use std::future::Future;
use std::sync::Arc;

use conclave_consensus::ContextId;
use futures::future::Either;
use jsonrpsee::server::middleware::rpc::{
    Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT,
};
use jsonrpsee::server::MethodResponse;
use jsonrpsee::types::{ErrorCode, ErrorObject, ErrorObjectOwned, Extensions, Request};
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

use super::auth::{Caller, MemberToken, Verifier, ADMIN_HEADER, AUTHORIZATION_HEADER};
use super::{codes, err};
use crate::node::{now_ms, Node};

/// What a method needs of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// The node's admin token (`X-Conclave-Admin`).
    Admin,
    /// A member token of a member of the context the `context` param names
    /// (by name, or first by position). With `optional`, a call naming no
    /// context is let through: the method answers about the caller's own
    /// contexts only.
    Context { optional: bool },
    /// A member token; the method answers about the caller's own contexts
    /// only, and like an unknown item about the rest.
    Member,
    /// A member token (the method answers about the caller's contexts) or
    /// the admin token (about all).
    MemberOrAdmin,
}

/// Every RPC method by name; a name ending in `*` covers every method that
/// starts with it.
pub const POLICY: &[(&str, Access)] = &[
    ("node_health", Access::Public),
    ("node_status", Access::Public),
    ("auth_login", Access::Public),
    // Txs are self-authenticating: signed by a member, and checked against
    // the context's members by the node.
    ("tx_submit", Access::Public),
    // Ends a subscription of this connection only.
    ("unsubscribe_blocks", Access::Public),
    ("unsubscribe_checkpoints", Access::Public),
    ("context_create", Access::Admin),
    ("debug_set_blocked_peers", Access::Admin),
    ("debug_set_link_faults", Access::Admin),
    ("context_invite*", Access::Admin),
    ("context_remove*", Access::Admin),
    ("context_leave*", Access::Admin),
    ("context_join*", Access::Admin),
    ("context_list", Access::MemberOrAdmin),
    ("context_info", Access::Context { optional: false }),
    ("context_nonce", Access::Context { optional: false }),
    ("context_members", Access::Context { optional: false }),
    ("state_get", Access::Context { optional: false }),
    ("app_view", Access::Context { optional: false }),
    ("block_get", Access::Context { optional: false }),
    ("checkpoint_latest", Access::Context { optional: false }),
    ("checkpoint_get", Access::Context { optional: false }),
    ("checkpoint_list", Access::Context { optional: false }),
    ("action_list", Access::Context { optional: false }),
    ("action_proof", Access::Context { optional: false }),
    ("evidence_list", Access::Context { optional: false }),
    ("subscribe_blocks", Access::Context { optional: true }),
    ("subscribe_checkpoints", Access::Context { optional: false }),
    // Looks the tx's context up; a tx of another context reads as unknown.
    ("tx_status", Access::Member),
];

/// The access `method` needs; `None` for a method the table does not know.
pub fn access(method: &str) -> Option<Access> {
    let exact = POLICY.iter().find(|(name, _)| *name == method);
    let prefix = || {
        POLICY.iter().find(|(name, _)| {
            name.strip_suffix('*')
                .is_some_and(|prefix| method.starts_with(prefix))
        })
    };
    exact.or_else(prefix).map(|(_, access)| *access)
}

/// The registered methods the table does not classify (the server refuses
/// to start with any).
pub fn unclassified<'a>(methods: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    methods
        .into_iter()
        .filter(|m| access(m).is_none())
        .collect()
}

/// What an authorised call may rely on about its caller.
#[derive(Clone, Copy, Debug, Default)]
pub struct Authorized {
    /// The member, with its token's expiry, if it presented a valid one.
    pub member: Option<MemberToken>,
    pub admin: bool,
}

impl Authorized {
    /// What [`Authorize`] left for this call (nobody if nothing).
    pub fn of(ext: &Extensions) -> Self {
        ext.get::<Self>().copied().unwrap_or_default()
    }
}

pub(crate) fn unauthorized(msg: impl Into<String>) -> ErrorObjectOwned {
    err(codes::UNAUTHORIZED, msg)
}

pub(crate) fn forbidden(
    member: &conclave_consensus::MemberId,
    ctx: &ContextId,
) -> ErrorObjectOwned {
    err(
        codes::FORBIDDEN,
        format!("member {member} is not a member of context {ctx} on this node"),
    )
}

/// The HTTP middleware: checks the credential headers of every HTTP
/// request and WebSocket upgrade into a [`Caller`], and marks them
/// sensitive so that no log prints them.
pub fn credentials_layer(
    verifier: Arc<Verifier>,
) -> tower::ServiceBuilder<tower::layer::util::Stack<CredentialsLayer, tower::layer::util::Identity>>
{
    tower::ServiceBuilder::new().layer(CredentialsLayer { verifier })
}

/// See [`credentials_layer`]; any request body type.
#[derive(Clone)]
pub struct CredentialsLayer {
    verifier: Arc<Verifier>,
}

impl<S> tower::Layer<S> for CredentialsLayer {
    type Service = Credentials<S>;

    fn layer(&self, inner: S) -> Credentials<S> {
        Credentials {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service of [`CredentialsLayer`].
#[derive(Clone)]
pub struct Credentials<S> {
    inner: S,
    verifier: Arc<Verifier>,
}

impl<S, B> tower::Service<hyper::Request<B>> for Credentials<S>
where
    S: tower::Service<hyper::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: hyper::Request<B>) -> Self::Future {
        let headers = req.headers();
        let caller = Caller::from_headers(
            &self.verifier,
            headers
                .get_all(AUTHORIZATION_HEADER)
                .iter()
                .map(|v| v.as_bytes()),
            headers.get(ADMIN_HEADER).map(|v| v.as_bytes()),
        );
        for name in [AUTHORIZATION_HEADER, ADMIN_HEADER] {
            if let Some(v) = req.headers_mut().get_mut(name) {
                v.set_sensitive(true);
            }
        }
        req.extensions_mut().insert(caller);
        self.inner.call(req)
    }
}

/// The RPC middleware applying [`POLICY`].
#[derive(Clone)]
pub struct AuthorizeLayer {
    node: Arc<Node>,
}

impl AuthorizeLayer {
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

impl<S> tower::Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize {
            inner,
            node: self.node.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authorize<S> {
    inner: S,
    node: Arc<Node>,
}

impl<S> Authorize<S> {
    /// Decides one call; on success leaves [`Authorized`] in its
    /// extensions.
    fn check(&self, req: &mut Request<'_>) -> Result<(), ErrorObjectOwned> {
        let Some(access) = access(req.method_name()) else {
            return Err(ErrorObject::from(ErrorCode::MethodNotFound));
        };
        let caller = req
            .extensions()
            .get::<Caller>()
            .cloned()
            .unwrap_or_default();
        let now = now_ms();
        let member = || caller.member(now).map_err(unauthorized);
        let authorized = match access {
            Access::Public => Authorized::default(),
            Access::Admin => {
                caller.admin().map_err(unauthorized)?;
                Authorized {
                    member: None,
                    admin: true,
                }
            }
            Access::Member => Authorized {
                member: Some(member()?),
                admin: caller.is_admin(),
            },
            Access::MemberOrAdmin => Authorized {
                member: if caller.is_admin() {
                    caller.member(now).ok()
                } else {
                    Some(member()?)
                },
                admin: caller.is_admin(),
            },
            Access::Context { optional } => {
                let token = member()?;
                match context_param(req.params.as_deref())? {
                    Some(ctx) => self.check_member(&caller, &token, &ctx)?,
                    None if optional => {}
                    None => return Err(err(codes::BAD_REQUEST, "missing param `context`")),
                }
                Authorized {
                    member: Some(token),
                    admin: caller.is_admin(),
                }
            }
        };
        req.extensions_mut().insert(authorized);
        Ok(())
    }

    fn check_member(
        &self,
        caller: &Caller,
        token: &MemberToken,
        ctx: &ContextId,
    ) -> Result<(), ErrorObjectOwned> {
        let internal = |e: crate::Error| err(codes::INTERNAL, e.to_string());
        if self.node.may_read(ctx, &token.member).map_err(internal)? {
            return Ok(());
        }
        // The operator may learn that a context is not on this node; anyone
        // else learns only that they may not read it.
        if caller.is_admin()
            && self
                .node
                .store
                .context(ctx)
                .map_err(|e| internal(e.into()))?
                .is_none()
        {
            return Err(err(
                codes::UNKNOWN_CONTEXT,
                format!("unknown context {ctx}"),
            ));
        }
        Err(forbidden(&token.member, ctx))
    }
}

impl<S> RpcServiceT for Authorize<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type BatchResponse = MethodResponse;
    type NotificationResponse = MethodResponse;

    fn call<'a>(&self, mut req: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        match self.check(&mut req) {
            Ok(()) => Either::Left(self.inner.call(req)),
            Err(e) => Either::Right(std::future::ready(
                MethodResponse::error(req.id, e).with_extensions(req.extensions),
            )),
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        for entry in batch.iter_mut() {
            let refused = match entry {
                Ok(BatchEntry::Call(req)) => self.check(req).err().map(|e| (req.id.clone(), e)),
                _ => None,
            };
            if let Some((id, e)) = refused {
                *entry = Err(BatchEntryErr::new(id, e));
            }
        }
        self.inner.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        // Notifications run no method (jsonrpsee answers nothing).
        self.inner.notification(n)
    }
}

/// The `context` param: by name in an object, or first in an array;
/// `None` if absent.
fn context_param(
    params: Option<&serde_json::value::RawValue>,
) -> Result<Option<ContextId>, ErrorObjectOwned> {
    #[derive(Deserialize)]
    struct ByName {
        context: Option<ContextId>,
    }
    struct First(Option<ContextId>);
    impl<'de> Deserialize<'de> for First {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = First;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an array of params")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<First, A::Error> {
                    let first = seq.next_element::<Option<ContextId>>()?.flatten();
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    Ok(First(first))
                }
            }
            d.deserialize_seq(V)
        }
    }
    let bad =
        |e: serde_json::Error| err(codes::BAD_REQUEST, format!("invalid param `context`: {e}"));
    let Some(raw) = params else {
        return Ok(None);
    };
    let text = raw.get().trim_start();
    if text.starts_with('{') {
        Ok(serde_json::from_str::<ByName>(text).map_err(bad)?.context)
    } else if text.starts_with('[') {
        Ok(serde_json::from_str::<First>(text).map_err(bad)?.0)
    } else {
        Err(err(
            codes::BAD_REQUEST,
            "params must be an object or an array",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_method_is_classified_and_unknown_ones_are_not() {
        for (name, _) in POLICY {
            assert!(access(name.trim_end_matches('*')).is_some(), "{name}");
        }
        assert_eq!(access("node_health"), Some(Access::Public));
        assert_eq!(access("context_create"), Some(Access::Admin));
        assert_eq!(access("context_invite"), Some(Access::Admin));
        assert_eq!(access("context_join_accept"), Some(Access::Admin));
        assert_eq!(access("context_leave"), Some(Access::Admin));
        assert_eq!(access("context_remove_member"), Some(Access::Admin));
        assert_eq!(
            access("context_info"),
            Some(Access::Context { optional: false })
        );
        assert_eq!(access("context_infos"), None);
        assert_eq!(access("no_such_method"), None);
        assert_eq!(access(""), None);
        assert_eq!(
            unclassified(["node_health", "rpc.discover", "tx_status"]),
            vec!["rpc.discover"]
        );
    }

    fn raw(s: &str) -> Box<serde_json::value::RawValue> {
        serde_json::value::RawValue::from_string(s.into()).unwrap()
    }

    #[test]
    fn context_param_by_name_or_position() {
        let ctx = ContextId([7; 32]);
        let hex = ctx.to_hex();
        let by_name = raw(&format!(r#"{{"key":"a","context":"{hex}","height":3}}"#));
        assert_eq!(context_param(Some(&by_name)).unwrap(), Some(ctx));
        let by_position = raw(&format!(r#"["{hex}","a",null]"#));
        assert_eq!(context_param(Some(&by_position)).unwrap(), Some(ctx));
        assert_eq!(context_param(None).unwrap(), None);
        assert_eq!(context_param(Some(&raw("[]"))).unwrap(), None);
        assert_eq!(context_param(Some(&raw("{}"))).unwrap(), None);
        assert_eq!(
            context_param(Some(&raw(r#"{"context":null}"#))).unwrap(),
            None
        );
        for bad in [
            r#"{"context":"nothex"}"#.to_string(),
            format!(
                r#"{{"context":"{hex}","context":"{}"}}"#,
                ContextId([8; 32]).to_hex()
            ),
            r#"["nothex"]"#.into(),
            "7".into(),
        ] {
            let e = context_param(Some(&raw(&bad))).unwrap_err();
            assert_eq!(e.code(), codes::BAD_REQUEST, "{bad}");
        }
    }
}
