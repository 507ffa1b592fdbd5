//! update-page-section: adds a section to a storefront draft page — naively, read every page's config, check the id is unique, write back, with no lock; the host keeps it safe.
//!
//! No database constraint can see section ids inside JSON across rows, so
//! this invariant rests on the host's serializable transactions alone.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::{
    asc, eq, error, error_with, field, invalid_input, json as json_value, manifest, run, text,
    time, timestamp, transaction, uuid, DbError, Guest, Input, Manifest, RowExt,
};

struct UpdatePageSection;

impl Guest for UpdatePageSection {
    fn describe() -> Manifest {
        manifest(
            env!("CARGO_PKG_NAME"),
            "Add a section to a storefront draft page, creating the page if it does not exist. \
             Give the page's slug (lower-case letters, digits and hyphens, e.g. \"home\") and \
             the section: a JSON object with a string \"id\" and any other fields (e.g. \
             {\"id\": \"hero\", \"kind\": \"banner\", \"title\": \"Welcome\"}). Section ids are \
             unique across all of the tenant's pages: if the id is already used, the answer is \
             the error \"duplicate_section_id\" with \"page\", the slug of the page that has it. \
             On success the answer is {\"page\": slug, \"sections\": number of sections on the \
             page now}. Other errors: \"page_conflict\" (the page was created concurrently; \
             try again), \"invalid_input\".",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "update-page-section input",
                "type": "object",
                "properties": {
                    "page": {
                        "type": "string",
                        "pattern": "^[a-z0-9][a-z0-9-]{0,62}$",
                        "description": "Slug of the page to add the section to."
                    },
                    "section": {
                        "type": "object",
                        "properties": {
                            "id": {
                                "type": "string",
                                "minLength": 1,
                                "description": "Id of the section, unique across the tenant's pages."
                            }
                        },
                        "required": ["id"],
                        "additionalProperties": true,
                        "description": "The section to append, stored as given."
                    }
                },
                "required": ["page", "section"],
                "additionalProperties": false
            }),
            &[
                "query:storefront_pages",
                "insert:storefront_pages",
                "update:storefront_pages",
            ],
        )
    }

    fn execute(input: String) -> Result<String, String> {
        run(&input, update_page_section)
    }
}

fn update_page_section(json: Json) -> Result<Json, Json> {
    let input = Input::new(json, &["page", "section"])?;
    let slug = input.str("page", 1..=63)?;
    if !is_slug(slug) {
        return Err(invalid_input(format!(
            "\"page\" must be a slug: lower-case letters, digits and hyphens, not starting \
             with a hyphen, got {slug:?}"
        )));
    }
    let section = input.object("section")?;
    let section_id = match section.get("id") {
        Some(Json::String(id)) if !id.is_empty() => id.as_str(),
        _ => {
            return Err(invalid_input(
                "\"section\" must have a non-empty string \"id\"",
            ))
        }
    };

    let pages = transaction::query("storefront_pages", &[], &[asc("slug")], None)?;
    let mut target = None;
    for page in &pages {
        let page_slug = page.text("slug")?;
        let config = page.json("config")?;
        if sections(&config)
            .iter()
            .any(|s| s.get("id").and_then(Json::as_str) == Some(section_id))
        {
            return Err(error_with(
                "duplicate_section_id",
                format!("a section with id {section_id:?} already exists on page {page_slug:?}"),
                json!({ "page": page_slug }),
            ));
        }
        if page_slug == slug {
            target = Some((page.uuid("id")?.to_string(), config));
        }
    }

    let now = time::now();
    match target {
        Some((page_id, mut config)) => {
            let count = {
                let Some(object) = config.as_object_mut() else {
                    return Err(error(
                        "invalid_page_config",
                        format!("the config of page {slug:?} is not a JSON object"),
                    ));
                };
                let list = object
                    .entry("sections")
                    .or_insert_with(|| Json::Array(Vec::new()));
                let Some(list) = list.as_array_mut() else {
                    return Err(error(
                        "invalid_page_config",
                        format!("the \"sections\" of page {slug:?} is not an array"),
                    ));
                };
                list.push(Json::Object(section.clone()));
                list.len()
            };
            transaction::update(
                "storefront_pages",
                &[eq("id", uuid(page_id))],
                &[
                    field("config", json_value(&config)),
                    field("updated_at", timestamp(now)),
                ],
            )?;
            Ok(json!({ "page": slug, "sections": count }))
        }
        None => {
            let config = json!({ "sections": [Json::Object(section.clone())] });
            let inserted = transaction::insert(
                "storefront_pages",
                &[
                    field("slug", text(slug)),
                    field("config", json_value(&config)),
                    field("updated_at", timestamp(now)),
                ],
            );
            match inserted {
                Ok(_) => Ok(json!({ "page": slug, "sections": 1 })),
                // storefront_pages_unique_slug: created concurrently.
                Err(DbError::Conflict(c)) => Err(error(
                    "page_conflict",
                    format!("page {slug:?} could not be created ({})", c.constraint),
                )),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// The sections of a page config; a config without a sections array has none.
fn sections(config: &Json) -> &[Json] {
    config
        .get("sections")
        .and_then(Json::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The `storefront_pages.slug` check constraint, checked here for a clear message.
fn is_slug(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty() && b.len() <= 63 && ok(&b[0]) && b[1..].iter().all(|c| ok(c) || *c == b'-')
}

bookhost_sdk::export!(UpdatePageSection with_types_in bookhost_sdk::bindings);
