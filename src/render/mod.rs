//! Rendering: Liquid templates and SMS encoding/segments.
pub mod contact;
pub mod event;
pub mod sms;
pub mod template;
