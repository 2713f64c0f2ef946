//! The Task layer's error: a ttrpc status code plus a message naming the
//! container and what failed.

use std::fmt;

use containerd_shim_protos::ttrpc::{Code, Status};

/// An RPC failure, mapped to the status code containerd turns into errdefs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    pub code: Code,
    pub message: String,
}

impl TaskError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        TaskError {
            code,
            message: message.into(),
        }
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(Code::NOT_FOUND, m)
    }
    pub fn exists(m: impl Into<String>) -> Self {
        Self::new(Code::ALREADY_EXISTS, m)
    }
    pub fn precondition(m: impl Into<String>) -> Self {
        Self::new(Code::FAILED_PRECONDITION, m)
    }
    pub fn invalid(m: impl Into<String>) -> Self {
        Self::new(Code::INVALID_ARGUMENT, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(Code::INTERNAL, m)
    }
    pub fn unimplemented(m: impl Into<String>) -> Self {
        Self::new(Code::UNIMPLEMENTED, m)
    }

    /// The ttrpc status sent to containerd.
    pub fn to_status(&self) -> Status {
        let mut s = Status::new();
        s.code = self.code.into();
        s.message = self.message.clone();
        s
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TaskError {}

impl From<crate::runtime::RuntimeError> for TaskError {
    fn from(e: crate::runtime::RuntimeError) -> Self {
        let code = if e.not_found {
            Code::NOT_FOUND
        } else {
            Code::UNKNOWN
        };
        TaskError::new(code, e.to_string())
    }
}
