"""The first test: runs the built executor (`bookhost build` first) on a
scratch database with the example data, through `bookhost invoke --local`.
Run it with `python3 -m unittest`. Set BOOKHOST to the bookhost binary if it
is not on your PATH."""

import json
import os
import subprocess
import unittest

BOOKHOST = os.environ.get("BOOKHOST", "bookhost")
# The example data's 30-minute Haircut, booked 2030-01-07 10:00-10:30.
HAIRCUT = "5e7c0000-0000-4000-8000-000000000001"


def invoke(input):
    run = subprocess.run([BOOKHOST, "invoke", "--local", "--input", json.dumps(input)], capture_output=True, text=True)
    if not run.stdout:
        raise AssertionError(run.stderr)
    return run.returncode, json.loads(run.stdout)


class FirstTest(unittest.TestCase):
    def test_books_a_free_slot(self):
        status, report = invoke({"service_id": HAIRCUT, "customer": "Ada", "start": "2030-01-07T11:00:00Z"})
        self.assertEqual(report["outcome"], "ok", report)
        self.assertEqual(status, 0)
        self.assertEqual(report["output"]["booking"]["ends_at"], "2030-01-07T11:30:00Z")

    def test_refuses_a_taken_slot(self):
        status, report = invoke({"service_id": HAIRCUT, "customer": "Ada", "start": "2030-01-07T10:15:00Z"})
        self.assertEqual(report["outcome"], "user_error", report)
        self.assertEqual(report["body"]["error"], "slot_taken")
        self.assertEqual(status, 2)


if __name__ == "__main__":
    unittest.main()
