// update-page-section-ts: update-page-section in TypeScript — naively, read
// every page's config, check the section id is unique, write back, with no
// lock; the host keeps it safe. No database constraint can see section ids
// inside JSON across rows, so this invariant rests on the host's
// serializable transactions alone.

import { asc, db, eq, executor, json, read, refuse, text, time, timestamp, uuid, CapabilityError, type Json } from "@bookhost/sdk";

type Section = { id: string; [key: string]: Json };

interface Input {
  page: string;
  section: Section;
}

const SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;

export const { describe, execute } = executor<Input>({
  name: "update-page-section-ts",
  description:
    "Add a section to a storefront draft page, creating the page if it does not exist (TypeScript). " +
    'Give the page\'s slug (lower-case letters, digits and hyphens, e.g. "home") and the section: a ' +
    'JSON object with a string "id" and any other fields (e.g. {"id": "hero", "kind": "banner", ' +
    '"title": "Welcome"}). Section ids are unique across all of the tenant\'s pages: if the id is ' +
    'already used, the answer is the error "duplicate_section_id" with "page", the slug of the page ' +
    'that has it. On success the answer is {"page": slug, "sections": number of sections on the page ' +
    'now}. Other errors: "page_conflict" (the page was created concurrently; try again), "invalid_input".',
  inputSchema: {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "update-page-section-ts input",
    type: "object",
    properties: {
      page: { type: "string", pattern: "^[a-z0-9][a-z0-9-]{0,62}$", description: "Slug of the page to add the section to." },
      section: {
        type: "object",
        properties: {
          id: { type: "string", minLength: 1, description: "Id of the section, unique across the tenant's pages." },
        },
        required: ["id"],
        additionalProperties: true,
        description: "The section to append, stored as given.",
      },
    },
    required: ["page", "section"],
    additionalProperties: false,
  },
  capabilities: ["query:storefront_pages", "insert:storefront_pages", "update:storefront_pages"],

  execute({ page: slug, section }): Json {
    if (!SLUG.test(slug)) refuse("invalid_input", `"page" must be a slug, got ${JSON.stringify(slug)}`);

    let target: { id: string; config: Json } | undefined;
    for (const page of db.query("storefront_pages", [], { order: [asc("slug")] })) {
      const pageSlug = read.text(page, "slug");
      const config = read.json(page, "config");
      const sections = (config as { sections?: Json }).sections;
      if (Array.isArray(sections) && sections.some((s) => (s as Section | null)?.id === section.id)) {
        refuse("duplicate_section_id", `a section with id ${JSON.stringify(section.id)} already exists on page ${JSON.stringify(pageSlug)}`, {
          page: pageSlug,
        });
      }
      if (pageSlug === slug) target = { id: read.uuid(page, "id"), config };
    }

    const now = timestamp(time.now());
    if (target) {
      const config = target.config;
      if (config === null || typeof config !== "object" || Array.isArray(config)) {
        refuse("invalid_page_config", `the config of page ${JSON.stringify(slug)} is not a JSON object`);
      }
      const sections = (config.sections ??= []);
      if (!Array.isArray(sections)) refuse("invalid_page_config", `the "sections" of page ${JSON.stringify(slug)} is not an array`);
      sections.push(section);
      db.update("storefront_pages", [eq("id", uuid(target.id))], { config: json(config), updated_at: now });
      return { page: slug, sections: sections.length };
    }

    try {
      db.insert("storefront_pages", { slug: text(slug), config: json({ sections: [section] }), updated_at: now });
      return { page: slug, sections: 1 };
    } catch (error) {
      // storefront_pages_unique_slug: created concurrently.
      if (error instanceof CapabilityError && error.kind === "conflict") {
        refuse("page_conflict", `page ${JSON.stringify(slug)} could not be created (${error.constraint})`);
      }
      throw error;
    }
  },
});
