//! Code generation from AsyncAPI documents (work in progress).
