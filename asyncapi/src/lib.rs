//! AsyncAPI document model (work in progress).
