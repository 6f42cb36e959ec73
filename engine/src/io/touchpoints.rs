//! The accepted touchpoints, stored compactly: the largest table, and the one only attribution
//! and referrals read, so it is kept as what they read and nothing more.
//!
//! Each accepted row is 21 bytes (customer row, time, channel code, campaign code, event code)
//! instead of a frame of strings (about 90 bytes a row at the demo's names): the customer id is
//! replaced by the referenced customer's row, names by codes into sorted dictionaries, and
//! extra columns are not kept (no analytic reads them). Rows stay in file order.
//!
//! [`Builder`] folds validated batches in as they are read (see `Dataset::load_with`), so the
//! whole table is never materialised as strings.

use std::collections::HashMap;

use foldhash::fast::FixedState;
use polars::prelude::*;

use super::schema::EVENTS;
use super::validate::CUSTOMER_ROW;
use crate::error::{Error, Result};

/// Campaign code of a touchpoint without a campaign.
pub const NO_CAMPAIGN: u32 = u32::MAX;

/// The event code of a visit ([`super::schema::VISIT_EVENT`], an index into [`EVENTS`]).
pub const VISIT: u8 = 1;

/// Accepted touchpoints, one entry per row in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Touchpoints {
    /// The referenced customer's row in the dataset's customers frame.
    pub customer_row: Vec<u32>,
    /// Microseconds since the epoch, UTC.
    pub ts: Vec<i64>,
    /// Index into `channels`.
    pub channel: Vec<u32>,
    /// Index into `campaigns`, or [`NO_CAMPAIGN`].
    pub campaign: Vec<u32>,
    /// Index into [`EVENTS`].
    pub event: Vec<u8>,
    /// Distinct channel names, sorted (so comparing codes compares names).
    pub channels: Vec<String>,
    /// Distinct campaign ids, sorted.
    pub campaigns: Vec<String>,
}

impl Touchpoints {
    #[must_use]
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// The event name of row `i`.
    #[must_use]
    pub fn event_name(&self, i: usize) -> &'static str {
        EVENTS[usize::from(self.event[i])]
    }

    /// The campaign id of row `i`, if it has one.
    #[must_use]
    pub fn campaign_name(&self, i: usize) -> Option<&str> {
        let c = self.campaign[i];
        (c != NO_CAMPAIGN).then(|| self.campaigns[c as usize].as_str())
    }

    /// The table as a frame (`__customer_row, ts, channel, campaign_id, event`), for callers that
    /// want polars (tests, notebooks, exports).
    pub fn to_frame(&self) -> Result<DataFrame> {
        let channel: StringChunked = self.channel.iter().map(|&c| Some(self.channels[c as usize].as_str())).collect();
        let campaign: StringChunked = (0..self.len()).map(|i| self.campaign_name(i)).collect();
        let event: StringChunked = (0..self.len()).map(|i| Some(self.event_name(i))).collect();
        let ts = Int64Chunked::from_vec("ts".into(), self.ts.clone())
            .into_datetime(TimeUnit::Microseconds, None)
            .into_column();
        Ok(DataFrame::new(
            self.len(),
            vec![
                Column::new(CUSTOMER_ROW.into(), self.customer_row.clone()),
                ts,
                channel.with_name("channel".into()).into_column(),
                campaign.with_name("campaign_id".into()).into_column(),
                event.with_name("event".into()).into_column(),
            ],
        )?)
    }
}

/// Folds validated touchpoint batches into [`Touchpoints`]; names are coded by first appearance
/// while batches arrive and renumbered in sorted order at the end.
#[derive(Default)]
pub struct Builder {
    out: Touchpoints,
    channel_code: HashMap<String, u32, FixedState>,
    campaign_code: HashMap<String, u32, FixedState>,
}

impl Builder {
    /// Room for `rows` more touchpoints (the row count a file claims), so the columns are
    /// allocated once instead of grown batch by batch. The claim is not trusted: if the room
    /// cannot be had, the columns grow as batches arrive instead.
    pub fn reserve(&mut self, rows: usize) {
        let out = &mut self.out;
        // Each either reserves or leaves its column as it was; a failure is not an error.
        let _ = out.customer_row.try_reserve_exact(rows).is_ok()
            && out.ts.try_reserve_exact(rows).is_ok()
            && out.channel.try_reserve_exact(rows).is_ok()
            && out.campaign.try_reserve_exact(rows).is_ok()
            && out.event.try_reserve_exact(rows).is_ok();
    }

    /// Appends a validated batch (columns `__customer_row`, `ts`, `channel`, `campaign_id`,
    /// `event`; every value but the campaign present, as validation leaves them).
    pub fn push(&mut self, frame: &DataFrame) -> Result<()> {
        let rows = frame.column(CUSTOMER_ROW)?.idx()?;
        let ts = frame.column("ts")?.datetime()?.physical();
        let channel = frame.column("channel")?.str()?;
        let campaign = frame.column("campaign_id")?.str()?;
        let event = frame.column("event")?.str()?;
        if rows.null_count() + ts.null_count() + channel.null_count() + event.null_count() > 0 {
            return Err(Error::Internal(
                "a touchpoint without customer row, time, channel or event got past ingest".into(),
            ));
        }
        let out = &mut self.out;
        let n = frame.height();
        out.customer_row.reserve(n);
        out.ts.reserve(n);
        out.channel.reserve(n);
        out.campaign.reserve(n);
        out.event.reserve(n);
        for r in rows.into_no_null_iter() {
            out.customer_row.push(u32::try_from(r).map_err(|_| Error::Internal(format!("customer row {r}")))?);
        }
        out.ts.extend(ts.into_no_null_iter());
        for c in channel.iter().flatten() {
            out.channel.push(code(&mut self.channel_code, c)?);
        }
        for c in campaign.iter() {
            out.campaign.push(match c {
                Some(c) => code(&mut self.campaign_code, c)?,
                None => NO_CAMPAIGN,
            });
        }
        for e in event.iter().flatten() {
            let Some(i) = EVENTS.iter().position(|x| *x == e) else {
                return Err(Error::Internal(format!("event '{e}' got past ingest")));
            };
            out.event.push(i as u8);
        }
        Ok(())
    }

    /// The table, its codes renumbered so that code order is name order.
    #[must_use]
    pub fn finish(self) -> Touchpoints {
        let Builder { mut out, channel_code, campaign_code } = self;
        let (channels, channel_map) = sorted(channel_code);
        let (campaigns, campaign_map) = sorted(campaign_code);
        for c in &mut out.channel {
            *c = channel_map[*c as usize];
        }
        for c in out.campaign.iter_mut().filter(|c| **c != NO_CAMPAIGN) {
            *c = campaign_map[*c as usize];
        }
        out.channels = channels;
        out.campaigns = campaigns;
        out
    }
}

/// The code of `name`, given a new one on first sight.
fn code(codes: &mut HashMap<String, u32, FixedState>, name: &str) -> Result<u32> {
    if let Some(&c) = codes.get(name) {
        return Ok(c);
    }
    let c = u32::try_from(codes.len())
        .ok()
        .filter(|&c| c < NO_CAMPAIGN)
        .ok_or_else(|| Error::bad_input("more distinct touchpoint names than attribution handles"))?;
    codes.insert(name.to_string(), c);
    Ok(c)
}

/// The names sorted, and each first-sight code's sorted position.
fn sorted(codes: HashMap<String, u32, FixedState>) -> (Vec<String>, Vec<u32>) {
    let mut names: Vec<(String, u32)> = codes.into_iter().collect();
    names.sort_unstable();
    let mut map = vec![0u32; names.len()];
    for (rank, (_, code)) in names.iter().enumerate() {
        map[*code as usize] = rank as u32;
    }
    (names.into_iter().map(|(n, _)| n).collect(), map)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The visit code names the visit event.
    #[test]
    fn the_visit_code_is_the_visit_event() {
        assert_eq!(EVENTS[usize::from(VISIT)], crate::io::schema::VISIT_EVENT);
    }

    fn batch(rows: &[u32], ts: &[i64], channel: &[&str], campaign: &[Option<&str>], event: &[&str]) -> DataFrame {
        let ts = Int64Chunked::from_vec("ts".into(), ts.to_vec()).into_datetime(TimeUnit::Microseconds, None);
        DataFrame::new(
            rows.len(),
            vec![
                Column::new(CUSTOMER_ROW.into(), rows.iter().map(|&r| r as IdxSize).collect::<Vec<_>>()),
                ts.into_column(),
                Column::new("channel".into(), channel),
                Column::new("campaign_id".into(), campaign),
                Column::new("event".into(), event),
            ],
        )
        .unwrap()
    }

    #[test]
    fn regression_a_footer_claiming_too_many_rows_does_not_abort() {
        let mut b = Builder::default();
        b.reserve(usize::MAX / 4);
        b.push(&batch(&[0], &[1], &["web"], &[None], &["lead"])).unwrap();
        assert_eq!(b.finish().len(), 1);
    }

    #[test]
    fn batches_fold_into_sorted_codes_and_read_back_as_written() {
        let mut b = Builder::default();
        b.push(&batch(&[2, 0], &[10, 5], &["web", "ad"], &[Some("c9"), None], &["lead", "visit"])).unwrap();
        b.push(&batch(&[1], &[7], &["billboard"], &[Some("c1")], &["click"])).unwrap();
        let t = b.finish();
        assert_eq!(t.channels, ["ad", "billboard", "web"]);
        assert_eq!(t.campaigns, ["c1", "c9"]);
        assert_eq!(t.channel, [2, 0, 1]);
        assert_eq!(t.campaign, [1, NO_CAMPAIGN, 0]);
        assert_eq!(t.event, [0, VISIT, 3]);
        assert_eq!(t.customer_row, [2, 0, 1]);
        assert_eq!(t.ts, [10, 5, 7]);
        let f = t.to_frame().unwrap();
        let channels: Vec<&str> = f.column("channel").unwrap().str().unwrap().iter().flatten().collect();
        assert_eq!(channels, ["web", "ad", "billboard"]);
        let campaigns: Vec<Option<&str>> = f.column("campaign_id").unwrap().str().unwrap().iter().collect();
        assert_eq!(campaigns, [Some("c9"), None, Some("c1")]);
    }
}
