//! create-booking: books a slot by checking for an overlap and then inserting, with no lock — the host's discipline keeps it safe.

use bookhost_sdk::{Guest, Manifest};

struct CreateBooking;

impl Guest for CreateBooking {
    fn describe() -> Manifest {
        booking_logic::describe(env!("CARGO_PKG_NAME"), false)
    }

    fn execute(input: String) -> Result<String, String> {
        booking_logic::execute(&input, false)
    }
}

bookhost_sdk::export!(CreateBooking with_types_in bookhost_sdk::bindings);
