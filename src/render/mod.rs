//! Rendering: Liquid templates and SMS encoding/segments.

/// Implements `liquid::model::ValueView` for `$type` by showing Liquid the value that
/// `$inner` (a method of `$type`) returns: a value formatted or parsed on first use. `Debug`
/// shows the field `$source` it comes from.
macro_rules! value_view_via {
    ($type:ty, $inner:ident, $source:ident) => {
        impl std::fmt::Debug for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.$source.fmt(f)
            }
        }

        impl liquid::model::ValueView for $type {
            fn as_debug(&self) -> &dyn std::fmt::Debug {
                self
            }
            fn render(&self) -> liquid::model::DisplayCow<'_> {
                liquid::model::ValueView::render(self.$inner())
            }
            fn source(&self) -> liquid::model::DisplayCow<'_> {
                liquid::model::ValueView::source(self.$inner())
            }
            fn type_name(&self) -> &'static str {
                liquid::model::ValueView::type_name(self.$inner())
            }
            fn query_state(&self, state: liquid::model::State) -> bool {
                liquid::model::ValueView::query_state(self.$inner(), state)
            }
            fn to_kstr(&self) -> liquid::model::KStringCow<'_> {
                liquid::model::ValueView::to_kstr(self.$inner())
            }
            fn to_value(&self) -> liquid::model::Value {
                liquid::model::ValueView::to_value(self.$inner())
            }
            fn as_scalar(&self) -> Option<liquid::model::ScalarCow<'_>> {
                liquid::model::ValueView::as_scalar(self.$inner())
            }
            fn as_array(&self) -> Option<&dyn liquid::model::ArrayView> {
                liquid::model::ValueView::as_array(self.$inner())
            }
            fn as_object(&self) -> Option<&dyn liquid::model::ObjectView> {
                liquid::model::ValueView::as_object(self.$inner())
            }
            fn is_nil(&self) -> bool {
                liquid::model::ValueView::is_nil(self.$inner())
            }
        }
    };
}

pub mod budget;
pub mod contact;
pub mod event;
pub mod explain;
pub mod language;
pub mod lenient;
pub mod probe;
pub mod sms;
pub mod template;
