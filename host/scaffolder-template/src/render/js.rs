//! How template values leave the renderer: printed into text as nunjitsu prints them, and
//! as the JSON value of a sole expression.

use minijinja::value::ValueKind;
use minijinja::{Error, ErrorKind, Value};
use serde_json::Value as Json;

use super::filters::nunjucks;
use super::filters::regex::JsRegex;

/// nunjitsu's `renderRuntimeValue`: nothing for undefined and null, arrays joined with `,`,
/// objects `[object Object]`, numbers as JavaScript prints them (`1e+21`, `NaN`), a regex as
/// `/source/flags`; a function or method value cannot be printed.
pub(crate) fn render(value: &Value) -> Result<String, Error> {
    nunjucks::render(value).map_err(|m| Error::new(ErrorKind::InvalidOperation, m))
}

/// The value of a sole expression as JSON (nunjitsu's `copyPublicValue` then
/// `JSON.stringify`): `None` for undefined; in an object an undefined value drops its key,
/// in an array it becomes `null`; NaN and ±Infinity become `null`; whole numbers are
/// integers; a regex becomes its `/source/flags` text; a function is an error.
pub(crate) fn to_json(value: &Value) -> Result<Option<Json>, Error> {
    Ok(match value.kind() {
        ValueKind::Undefined => None,
        ValueKind::None => Some(Json::Null),
        ValueKind::Bool => Some(Json::Bool(value.is_true())),
        ValueKind::Number => Some(number(value)),
        ValueKind::String | ValueKind::Bytes => {
            Some(Json::String(value.as_str().unwrap_or_default().to_owned()))
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let mut items = Vec::new();
            for item in value.try_iter()? {
                items.push(to_json(&item)?.unwrap_or(Json::Null));
            }
            Some(Json::Array(items))
        }
        ValueKind::Map => {
            let mut map = serde_json::Map::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                if let Some(json) = to_json(&item)? {
                    let key = nunjucks::to_js_string(&key)
                        .map_err(|m| Error::new(ErrorKind::InvalidOperation, m))?;
                    map.insert(key, json);
                }
            }
            Some(Json::Object(map))
        }
        _ => match JsRegex::from_value(value) {
            Some(regex) => Some(Json::String(regex.to_string())),
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "Callable values cannot be coerced",
                ));
            }
        },
    })
}

fn number(value: &Value) -> Json {
    if let Some(i) = value.as_i64() {
        return Json::from(i);
    }
    let f = f64::try_from(value.clone()).unwrap_or(f64::NAN);
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        return Json::from(f as i64);
    }
    if !f.is_finite() {
        return Json::Null;
    }
    // JavaScript's digits (`12345678901234567000`, not `1.2345678901234567e19`).
    serde_json::from_str(&nunjucks::js_number_to_string(f))
        .ok()
        .or_else(|| serde_json::Number::from_f64(f).map(Json::Number))
        .unwrap_or(Json::Null)
}
