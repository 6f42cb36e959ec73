//! `h3_cell(lat, lng, res)`: the H3 cell of a coordinate pair as a DataFusion scalar UDF, built
//! on the engine's own indexer so the cluster and the local engine give the same cells.

use std::sync::Arc;

use custmap_engine::spatial::{h3, Res};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Float64Type};
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
