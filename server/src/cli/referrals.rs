//! `referrals`: advocates, chain value and channel multipliers.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn run_referrals(
    dir: &Path,
    params: &custmap_engine::analytics::referrals::ReferralsParams,
    out: &Path,
) -> Result<(), Error> {
    use custmap_engine::analytics::referrals::{referrals, ReferralsBy};
    let format = OutputFormat::from_path(out)?;
    let ds = load(dir, &[Table::Touchpoints, Table::Deals])?;
    let result = referrals(&ds, params)?;
    let cells = params.by == ReferralsBy::Cell;
    match format {
        OutputFormat::Json => write_json(out, &views::referrals_json(&ds.name, &result, params.k.get())?)?,
        OutputFormat::Png | OutputFormat::Svg if cells => {
            let image = if format == OutputFormat::Png { ImageFormat::Png } else { ImageFormat::Svg };
            let spec = MapSpec {
                cells: &result.table,
                metric: "referred_customers",
                title: "Where advocates live: customers they referred".into(),
                subtitle: format!(
                    "res {}, {} of advocates, k = {} ({} small cells dropped)",
                    params.res.get(),
                    params.location.as_str(),
                    params.k.get(),
                    result.dropped
                ),
                districts: ds.districts.as_ref(),
                size: (1400, 1000),
                overlay: Vec::new(),
            };
            write_bytes(out, &render_map(&spec, image)?)?;
        }
        OutputFormat::Png | OutputFormat::Svg => {
            let image = if format == OutputFormat::Png { ImageFormat::Png } else { ImageFormat::Svg };
            write_bytes(out, &render_chart(&views::referrals_chart(&result)?, image)?)?;
        }
        OutputFormat::GeoJson if !cells => {
            return Err(Error::BadInput(
                "referrals by referrer or channel are tables (.csv .parquet .arrow .json) or charts (.png .svg)".into(),
            ));
        }
        _ => write_frame(&result.table, out)?,
    }
    let s = &result.summary;
    let pct = |x: Option<f64>| x.map_or_else(|| "n/a".to_string(), |v| format!("{:.1}%", v * 100.0));
    println!(
        "wrote {} rows to {}: {} advocates referred {} of {} customers; referred buyers {} of all buyers, \
         revenue {}; conversion referred {} vs others {}; {} referral links ignored",
        result.table.height(),
        out.display(),
        s.advocates,
        s.referred_customers,
        s.customers,
        pct(s.referred_share_of_buyers),
        pct(s.referred_share_of_revenue),
        pct(s.referred_conversion),
        pct(s.other_conversion),
        s.ignored_links
    );
    Ok(())
}
