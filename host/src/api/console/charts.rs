//! Charts drawn on the server as inline SVG: bars over time buckets, and
//! spans on a timeline. No script draws them, so a page is complete as
//! it arrives and the content security policy needs no exceptions.

use maud::{html, Markup};

const WIDTH: f64 = 240.0;
const HEIGHT: f64 = 48.0;

/// Bars for `values` (one per bucket), scaled to the largest; each bar's
/// tooltip is `label(index, value)`.
pub fn bars(values: &[i64], class: &str, label: impl Fn(usize, i64) -> String) -> Markup {
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = WIDTH / values.len().max(1) as f64;
    let summary = format!(
        "{} over {} buckets",
        values.iter().sum::<i64>(),
        values.len()
    );
    html! {
        svg class={ "bars " (class) } viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(summary) {
            line x1="0" y1=(HEIGHT - 0.5) x2=(WIDTH) y2=(HEIGHT - 0.5) class="axis" {}
            @for (i, value) in values.iter().enumerate() {
                @let h = if *value > 0 { (*value as f64 / max * (HEIGHT - 2.0)).max(2.0) } else { 0.0 };
                rect x=(fmt(i as f64 * step + 1.0)) y=(fmt(HEIGHT - h)) width=(fmt((step - 2.0).max(1.0))) height=(fmt(h)) {
                    title { (label(i, *value)) }
                }
            }
        }
    }
}

/// A span of a timeline, in microseconds from the timeline's start.
#[derive(Debug, Clone)]
pub struct Span {
    pub start_us: i64,
    pub duration_us: i64,
    /// The part at its start spent waiting for a lock.
    pub wait_us: i64,
    pub class: &'static str,
    pub title: String,
}

/// One row per span across `total_us`, lock waits drawn apart.
pub fn timeline(spans: &[Span], total_us: i64) -> Markup {
    let total = total_us.max(1) as f64;
    let row = 14.0;
    let height = row * spans.len().max(1) as f64;
    let x = |us: i64| fmt((us.max(0) as f64 / total * 1000.0).min(1000.0));
    let w = |us: i64| fmt((us.max(0) as f64 / total * 1000.0).clamp(2.0, 1000.0));
    html! {
        svg.timeline viewBox=(format!("0 0 1000 {height}")) preserveAspectRatio="none" role="img"
            aria-label=(format!("{} spans over {} µs", spans.len(), total_us)) {
            @for (i, span) in spans.iter().enumerate() {
                @let y = fmt(i as f64 * row + 2.0);
                g class=(span.class) {
                    title { (span.title) }
                    rect.span x=(x(span.start_us)) y=(y) width=(w(span.duration_us)) height=(fmt(row - 4.0)) {}
                    @if span.wait_us > 0 {
                        rect.wait x=(x(span.start_us)) y=(y) width=(w(span.wait_us.min(span.duration_us))) height=(fmt(row - 4.0)) {}
                    }
                }
            }
        }
    }
}

/// SVG numbers with at most two decimals.
fn fmt(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_keep_empty_buckets_flat() {
        let chart = bars(&[0, 5, 10], "replays", |i, v| format!("{i}:{v}")).into_string();
        assert_eq!(chart.matches("<rect").count(), 3);
        assert!(chart.contains(r#"height="46""#), "{chart}");
        assert!(chart.contains(r#"height="23""#), "{chart}");
        assert!(chart.contains(r#"height="0""#), "{chart}");
        assert!(chart.contains("<title>2:10</title>"), "{chart}");
    }

    #[test]
    fn a_timeline_draws_waits_inside_their_spans() {
        let spans = [Span {
            start_us: 500,
            duration_us: 500,
            wait_us: 250,
            class: "call",
            title: "lock".into(),
        }];
        let chart = timeline(&spans, 1000).into_string();
        assert!(
            chart.contains(r#"x="500""#) && chart.contains(r#"width="250""#),
            "{chart}"
        );
    }
}
