// delete-service-ts: delete-service in TypeScript — naively, count the
// upcoming bookings, then delete, with no lock; the host keeps it safe.

import { db, eq, executor, gt, isIn, refuse, text, time, timestamp, uuid, CapabilityError, type Json } from "@bookhost/sdk";

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export const { describe, execute } = executor<{ service_id: string }>({
  name: "delete-service-ts",
  description:
    "Delete a service by id (TypeScript). A service that still has upcoming pending or " +
    'confirmed bookings is never deleted: the answer is then the error "service_has_upcoming_bookings" ' +
    'with "upcoming", the number of such bookings (cancel or finish them first). A service with only ' +
    'past or cancelled bookings is kept for the record: error "service_has_bookings". On success the ' +
    'answer is {"deleted": service_id}. Other errors: "service_not_found", "invalid_input".',
  inputSchema: {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "delete-service-ts input",
    type: "object",
    properties: {
      service_id: { type: "string", format: "uuid", description: "Id of the service to delete." },
    },
    required: ["service_id"],
    additionalProperties: false,
  },
  capabilities: ["query:bookings", "delete:services"],

  execute(input): Json {
    if (!UUID.test(input.service_id)) refuse("invalid_input", `"service_id" must be a UUID, got ${JSON.stringify(input.service_id)}`);
    const service = input.service_id.toLowerCase();

    const upcoming = db.query("bookings", [
      eq("service_id", uuid(service)),
      isIn("status", [text("pending"), text("confirmed")]),
      gt("ends_at", timestamp(time.now())),
    ]).length;
    if (upcoming > 0) {
      refuse("service_has_upcoming_bookings", `service ${service} has ${upcoming} upcoming booking(s)`, { upcoming });
    }

    let deleted: number;
    try {
      deleted = db.delete("services", [eq("id", uuid(service))]);
    } catch (error) {
      // Deleting a service can only hit `bookings_service_fk`, which refuses
      // to orphan its past or cancelled bookings.
      if (error instanceof CapabilityError && error.kind === "conflict") {
        refuse("service_has_bookings", `service ${service} has past or cancelled bookings that refer to it (${error.constraint})`);
      }
      throw error;
    }
    if (deleted === 0) refuse("service_not_found", `no service with id ${service}`);
    return { deleted: service };
  },
});
