//! create-booking-locked: create-booking that first locks the service's day, so concurrent bookings of that day queue instead of replaying.

use bookhost_sdk::{Guest, Manifest};

struct CreateBookingLocked;

impl Guest for CreateBookingLocked {
    fn describe() -> Manifest {
        booking_logic::describe(env!("CARGO_PKG_NAME"), true)
    }

    fn execute(input: String) -> Result<String, String> {
        booking_logic::execute(&input, true)
    }
}

bookhost_sdk::export!(CreateBookingLocked with_types_in bookhost_sdk::bindings);
