//! OTLP values as the text ClickHouse rows store: strings as they are, numbers and
//! booleans in their usual form, arrays and maps as JSON; and a resource's service name.

#[cfg(test)]
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};

#[cfg(test)]
const SERVICE_NAME: &str = "service.name";
/// What OpenTelemetry SDKs report when no service name is configured.
pub(crate) const UNKNOWN_SERVICE: &str = "unknown_service";

/// The `service.name` of a resource, unless it has none.
#[cfg(test)]
pub(crate) fn service_name(resource: &[KeyValue]) -> Option<String> {
    resource
        .iter()
        .find(|kv| kv.key == SERVICE_NAME)
        .map(|kv| text(kv.value.as_ref()))
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
pub(crate) fn columns(attributes: &[KeyValue]) -> (Vec<String>, Vec<String>) {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .unzip()
}

pub(crate) fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => hex::encode(b),
        Some(Value::StringValueStrindex(i)) => i.to_string(),
        Some(other) => json(other).to_string(),
    }
}

fn json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::StringValue(s) => J::String(s.clone()),
        Value::BoolValue(b) => J::Bool(*b),
        Value::IntValue(i) => J::from(*i),
        Value::DoubleValue(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        Value::BytesValue(b) => J::String(hex::encode(b)),
        Value::StringValueStrindex(i) => J::from(*i),
        Value::ArrayValue(a) => J::Array(
            a.values
                .iter()
                .map(|v| v.value.as_ref().map_or(J::Null, json))
                .collect(),
        ),
        Value::KvlistValue(kv) => J::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value
                            .as_ref()
                            .and_then(|v| v.value.as_ref())
                            .map_or(J::Null, json),
                    )
                })
                .collect(),
        ),
    }
}
