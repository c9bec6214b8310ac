//! Runs a call's future to completion on the current thread, answering the
//! guest's state reads from a borrowed [`StateView`].
//!
//! Wasmtime requires store data to be `'static`, so the store cannot hold the
//! `&dyn StateView` the node lends for one call. Instead `storage_read` is an
//! async host function: on a miss it posts the key to a [`StateChannel`] and
//! suspends (the guest runs on a wasmtime fiber). [`drive`] polls the call,
//! and each time it suspends, reads the key from the `StateView` and posts the
//! answer back. No threads, no `unsafe`, and the guest still sees an ordinary
//! synchronous import.

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use crate::error::{Error, Result, StateError};
use crate::trap::HostTrap;
use crate::types::StateView;

/// The one outstanding state read of a call.
#[derive(Default)]
pub(crate) struct StateChannel {
    exchange: Mutex<Exchange>,
}

#[derive(Default)]
enum Exchange {
    #[default]
    Idle,
    Requested(Vec<u8>),
    Answered(Option<Vec<u8>>),
    Failed,
}

impl StateChannel {
    /// Asks the driver for `key` and waits for the answer (host side).
    pub(crate) async fn get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, HostTrap> {
        *self.exchange.lock() = Exchange::Requested(key);
        Answer { channel: self }.await
    }

    fn take_request(&self) -> Option<Vec<u8>> {
        let mut exchange = self.exchange.lock();
        match std::mem::take(&mut *exchange) {
            Exchange::Requested(key) => Some(key),
            other => {
                *exchange = other;
                None
            }
        }
    }

    fn answer(&self, answer: Exchange) {
        *self.exchange.lock() = answer;
    }
}

/// Resolves once the driver has answered the pending request.
struct Answer<'a> {
    channel: &'a StateChannel,
}

impl Future for Answer<'_> {
    type Output = Result<Option<Vec<u8>>, HostTrap>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut exchange = self.channel.exchange.lock();
        match std::mem::take(&mut *exchange) {
            Exchange::Answered(value) => Poll::Ready(Ok(value)),
            Exchange::Failed => Poll::Ready(Err(HostTrap::State)),
            pending @ Exchange::Requested(_) => {
                *exchange = pending;
                Poll::Pending
            }
            Exchange::Idle => {
                Poll::Ready(Err(HostTrap::Invalid("state read lost its request".into())))
            }
        }
    }
}

/// Polls `call` to completion, serving its state reads from `state`. A
/// failing read fails the call on the guest side and is returned here as
/// [`Error::State`], whatever the guest did next.
pub(crate) fn drive<T>(
    call: impl Future<Output = T>,
    channel: &StateChannel,
    state: &dyn StateView,
) -> Result<T> {
    let mut call = pin!(call);
    let mut cx = Context::from_waker(Waker::noop());
    let mut failure: Option<StateError> = None;
    loop {
        match call.as_mut().poll(&mut cx) {
            Poll::Ready(output) => {
                return match failure {
                    Some(err) => Err(Error::State(err)),
                    None => Ok(output),
                };
            }
            Poll::Pending => {
                let Some(key) = channel.take_request() else {
                    return Err(Error::Internal(
                        "guest call suspended without a state read".into(),
                    ));
                };
                match state.get(&key) {
                    Ok(value) => channel.answer(Exchange::Answered(value)),
                    Err(err) => {
                        failure = Some(err);
                        channel.answer(Exchange::Failed);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Map(BTreeMap<Vec<u8>, Vec<u8>>);

    impl StateView for Map {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
            if key == b"broken" {
                return Err(StateError::new("disk on fire"));
            }
            Ok(self.0.get(key).cloned())
        }
    }

    fn state() -> Map {
        Map(BTreeMap::from([(b"a".to_vec(), b"1".to_vec())]))
    }

    #[test]
    fn reads_are_served_in_order() {
        let channel = StateChannel::default();
        let call = async {
            let a = channel.get(b"a".to_vec()).await;
            let b = channel.get(b"b".to_vec()).await;
            (a.ok(), b.ok())
        };
        let (a, b) = drive(call, &channel, &state()).expect("driven");
        assert_eq!(a, Some(Some(b"1".to_vec())));
        assert_eq!(b, Some(None));
    }

    #[test]
    fn a_failed_read_fails_the_call_and_reports_the_cause() {
        let channel = StateChannel::default();
        let call = async { channel.get(b"broken".to_vec()).await };
        match drive(call, &channel, &state()) {
            Err(Error::State(err)) => assert_eq!(err.to_string(), "disk on fire"),
            other => panic!("expected a state error, got {other:?}"),
        }
    }

    #[test]
    fn a_suspension_without_a_request_is_an_internal_error() {
        let channel = StateChannel::default();
        let call = std::future::pending::<()>();
        assert!(matches!(
            drive(call, &channel, &state()),
            Err(Error::Internal(_))
        ));
    }
}
