//! Rendering: Liquid templates and SMS encoding/segments.
pub mod sms;
pub mod template;
