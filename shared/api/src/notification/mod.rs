//! `notification.toolkit.fluxcd.io`: Receiver (`v1`).

pub mod receiver;

pub use receiver::{
    DEFAULT_OIDC_AUDIENCE, DEFAULT_RECEIVER_INTERVAL, OidcProvider, OidcValidation, OidcVariable,
    Receiver, ReceiverResource, ReceiverSpec, ReceiverStatus, ReceiverType, TOKEN_NOT_FOUND_REASON,
    WEBHOOK_PATH_PREFIX,
};

#[cfg(test)]
mod receiver_tests;
