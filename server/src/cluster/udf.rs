//! custmap's functions for the cluster, built on the engine's own code so the cluster and the
//! local engine give the same answers:
//! - `h3_cell(lat, lng, res)`: the H3 cell of a coordinate pair, from the engine's indexer;
//! - `journey(...)`: one customer's journey, by the engine's journey rule.

use std::sync::Arc;

use custmap_engine::analytics::attribution::journeys::{customer_rule, Touch, PATH_SEPARATOR};
use custmap_engine::spatial::{h3, Res};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Builder, ListArray, StringBuilder, StructArray, UInt64Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Float64Type, Int64Type};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// The UDF's SQL name.
pub const H3_CELL: &str = "h3_cell";

/// `h3_cell(lat DOUBLE, lng DOUBLE, res BIGINT) -> UBIGINT`: null where a coordinate is null or
/// invalid; an error for a resolution outside 0..=15.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct H3Cell {
    signature: Signature,
}

impl H3Cell {
    #[must_use]
    pub fn new() -> Self {
        H3Cell {
            signature: Signature::exact(
                vec![DataType::Float64, DataType::Float64, DataType::Int64],
                Volatility::Immutable,
            ),
        }
    }
}

impl Default for H3Cell {
    fn default() -> Self {
        Self::new()
    }
}

/// The UDF, ready to register.
#[must_use]
pub fn h3_cell() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(H3Cell::new()))
}

impl ScalarUDFImpl for H3Cell {
    fn name(&self) -> &str {
        H3_CELL
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let res = match &args.args[2] {
            ColumnarValue::Scalar(ScalarValue::Int64(Some(r))) => *r,
            _ => return exec_err!("h3_cell: the resolution must be a constant integer"),
        };
        let Some(res) = u8::try_from(res).ok().and_then(|r| Res::new(r).ok()) else {
            return exec_err!("h3_cell: resolution {res} out of range [0, 15]");
        };
        let n = args.number_rows;
        let lat = args.args[0].clone().into_array(n)?;
        let lng = args.args[1].clone().into_array(n)?;
        let values = |a: &ArrayRef| -> Vec<Option<f64>> { a.as_primitive::<Float64Type>().iter().collect() };
        let cells = h3::cells(&values(&lat), &values(&lng), res);
        let out: ArrayRef = Arc::new(UInt64Array::from(cells));
        debug_assert_eq!(out.len(), n);
        Ok(ColumnarValue::Array(out))
    }
}

/// The journey function's SQL name.
pub const JOURNEY: &str = "journey";

/// `journey(touches, referred, created, conversion_at, end, window, referral_key)`: one
/// customer's journey by the engine's own rule ([`customer_rule`]), so the cluster does not
/// restate it. `touches`: the customer's touches that are not visits, as a list of
/// `{ts: BIGINT microseconds, k: key}` in order (time, channel, campaign); `referred`: whether
/// they were referred; `created`: the start of their `created_at` in microseconds; the other
/// three in microseconds. Returns `{path, lead, referral_at}`: the keys of the journey's steps
/// joined by [`PATH_SEPARATOR`] (null when they have no journey), the lead's key (null when they
/// have no touch), and when the referral touch was placed.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Journey {
    signature: Signature,
}

impl Journey {
    #[must_use]
    pub fn new() -> Self {
        Journey { signature: Signature::any(7, Volatility::Immutable) }
    }
}

impl Default for Journey {
    fn default() -> Self {
        Self::new()
    }
}

/// The UDF, ready to register.
#[must_use]
pub fn journey() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(Journey::new()))
}

fn journey_fields() -> Fields {
    Fields::from(vec![
        Field::new("path", DataType::Utf8, true),
        Field::new("lead", DataType::Utf8, true),
        Field::new("referral_at", DataType::Int64, true),
    ])
}

impl ScalarUDFImpl for Journey {
    fn name(&self) -> &str {
        JOURNEY
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(journey_fields()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays: Vec<ArrayRef> = args.args.iter().map(|a| a.clone().into_array(n)).collect::<Result<_>>()?;
        let int = |i: usize| cast(&arrays[i], &DataType::Int64);
        let (created, conversion, end, window) = (int(2)?, int(3)?, int(4)?, int(5)?);
        let (created, conversion) = (created.as_primitive::<Int64Type>(), conversion.as_primitive::<Int64Type>());
        let (end, window) = (end.as_primitive::<Int64Type>(), window.as_primitive::<Int64Type>());
        let referral_key = cast(&arrays[6], &DataType::Utf8)?;
        let referral_key = referral_key.as_string::<i32>();
        let referred = cast(&arrays[1], &DataType::Boolean)?;
        let referred = referred.as_boolean();
        let lists = match arrays[0].data_type() {
            DataType::List(_) => arrays[0].as_list::<i32>().clone(),
            DataType::Null => {
                ListArray::new_null(Arc::new(Field::new_list_field(DataType::Struct(Fields::empty()), true)), n)
            }
            other => return exec_err!("journey: touches must be a list, got {other}"),
        };
        // Every customer's steps in one array, typed once: row i's are offsets[i]..offsets[i + 1].
        let steps = lists.values();
        let Some(steps) = steps.as_struct_opt() else {
            return exec_err!("journey: touches must be a list of {{ts, k}}, got {}", lists.data_type());
        };
        let field = |name: &str, ty: &DataType| -> Result<ArrayRef> {
            match steps.column_by_name(name) {
                Some(c) => Ok(cast(c, ty)?),
                None if steps.is_empty() => Ok(datafusion::arrow::array::new_empty_array(ty)),
                None => exec_err!("journey: touches have no '{name}'"),
            }
        };
        let (ts, keys) = (field("ts", &DataType::Int64)?, field("k", &DataType::Utf8)?);
        let (ts, keys) = (ts.as_primitive::<Int64Type>(), keys.as_string::<i32>());
        let offsets = lists.value_offsets();
        let mut paths = StringBuilder::new();
        let mut leads = StringBuilder::new();
        let mut referral_ats = Int64Builder::new();
        let mut touches: Vec<Touch> = Vec::new();
        let mut path = String::new();
        for i in 0..n {
            touches.clear();
            // A touch's key is its position in `keys` plus one; key 0 is the referral touch's.
            // Steps are written by name, so a touchpoint key named like the referral key is the
            // same key, as in the local builder.
            let (from, to) = (offsets[i] as usize, offsets[i + 1] as usize);
            if lists.is_valid(i) {
                for j in from..to {
                    if ts.is_null(j) || keys.is_null(j) {
                        return exec_err!("journey: a touch without a time or key");
                    }
                    touches.push(Touch { key: (j + 1) as u32, ts: ts.value(j) });
                }
            }
            let name = |key: u32| if key == 0 { referral_key.value(i) } else { keys.value(key as usize - 1) };
            let referral =
                (referred.is_valid(i) && referred.value(i)).then(|| created.is_valid(i).then(|| created.value(i)));
            let conversion_at = conversion.is_valid(i).then(|| conversion.value(i));
            let out = customer_rule(&mut touches, referral, 0, conversion_at, end.value(i), window.value(i));
            if out.kept {
                path.clear();
                for (k, t) in touches.iter().enumerate() {
                    if k > 0 {
                        path.push(PATH_SEPARATOR);
                    }
                    path.push_str(name(t.key));
                }
                paths.append_value(&path);
            } else {
                paths.append_null();
            }
            leads.append_option(out.lead.map(|t| name(t.key)));
            referral_ats.append_option(out.referral_at);
        }
        let columns: Vec<ArrayRef> =
            vec![Arc::new(paths.finish()), Arc::new(leads.finish()), Arc::new(referral_ats.finish())];
        Ok(ColumnarValue::Array(Arc::new(StructArray::try_new(journey_fields(), columns, None)?)))
    }
}
