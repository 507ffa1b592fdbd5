//! The console's page shell (navigation, who is signed in) and the small
//! formats every page shares (times, durations, digests).

use maud::{html, Markup};

use super::layout::bare;
use super::viewer::{Console, Viewer};

/// Which section of the navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Invocations,
    Executors,
    Insights,
    Audit,
}

const SECTIONS: [(Section, &str, &str); 4] = [
    (Section::Invocations, "/console/invocations", "Invocations"),
    (Section::Executors, "/console/executors", "Executors"),
    (Section::Insights, "/console/insights", "Conflict insights"),
    (Section::Audit, "/console/audit", "Audit integrity"),
];

/// A signed-in page: navigation, who is looking, sign-out, then `body`.
pub fn shell(console: &Console, section: Section, title: &str, body: Markup) -> Markup {
    bare(
        title,
        html! {
            header.top {
                span.brand { "bookhost" }
                nav {
                    @for (s, href, label) in SECTIONS {
                        a href=(href) class=[(s == section).then_some("current")] { (label) }
                    }
                }
                span.viewer {
                    @match console.viewer {
                        Viewer::Operator => span.badge.operator { "operator" },
                        Viewer::Tenant(t) => span.badge.tenant title=(t.0) { "tenant " (short_id(t.0)) },
                    }
                    form.inline method="post" action="/console/logout" {
                        input type="hidden" name="csrf" value=(console.csrf);
                        button type="submit" { "Sign out" }
                    }
                }
            }
            main { h1 { (title) } (body) }
        },
    )
}

/// The sign-in page, with why the last try failed.
pub fn sign_in(message: Option<&str>) -> Markup {
    bare(
        "Sign in",
        html! {
            main.narrow {
                h1 { "bookhost console" }
                p { "Sign in with the operator key, or with a tenant's API key to see that tenant only." }
                @if let Some(message) = message { p.error role="alert" { (message) } }
                form method="post" action="/console/login" autocomplete="off" {
                    label for="key" { "Key" }
                    input #key type="password" name="key" required autofocus;
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// The last 8 hex digits of an id: random in every id the host makes
/// (invocation ids are UUIDv7, whose first digits are only the time).
pub fn short_id(id: uuid::Uuid) -> String {
    let text = id.simple().to_string();
    text[text.len() - 8..].to_owned()
}

/// The first 12 hex digits of a digest.
pub fn short_digest(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

pub fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// Microseconds as the unit a reader takes in at a glance.
pub fn micros(us: i64) -> String {
    match us {
        us if us < 1_000 => format!("{us} µs"),
        us if us < 1_000_000 => format!("{:.1} ms", us as f64 / 1e3),
        us => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// An outcome as a labelled chip (class by kind, so colour is not the only cue).
pub fn outcome(name: &str) -> Markup {
    let class = match name {
        "committed" | "ok" | "granted" => "good",
        "replayed" | "replaying" | "rolled_back" | "dry_run" | "pending-approval" => "warn",
        _ => "bad",
    };
    html! { span class={ "chip " (class) } { (name) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_the_right_unit() {
        assert_eq!(micros(950), "950 µs");
        assert_eq!(micros(12_345), "12.3 ms");
        assert_eq!(micros(2_500_000), "2.50 s");
    }

    #[test]
    fn markup_escapes_what_executors_wrote() {
        let name = "<script>alert(1)</script>";
        let page = html! { td { (name) } }.into_string();
        assert!(!page.contains("<script>"), "{page}");
    }
}
