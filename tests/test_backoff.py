"""The one back-off rule: waits double from the first up to the cap, and start over after a success."""
from microspider.backoff import Backoff, doubling
from microspider.crawl.relay import RELAY_DELAY_CAP, retry_delay


def test_doubling_starts_at_first_and_stops_at_the_cap():
    assert [doubling(0.5, 30.0, step) for step in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert doubling(1.0, 300.0, 10 ** 6) == 300.0      # a huge step neither overflows nor passes the cap


def test_a_backoff_hands_out_doubling_waits_until_reset():
    backoff = Backoff(0.1, 0.5)
    assert [backoff.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.delay == 0.1
    backoff.grow()
    assert backoff.delay == 0.2 and backoff.next() == 0.2 and backoff.delay == 0.4


def test_the_backlog_retry_delay_is_the_same_rule():
    assert [retry_delay(age, 2.0) for age in range(1, 6)] == [doubling(2.0, RELAY_DELAY_CAP, s) for s in range(5)]
    assert retry_delay(0, 2.0) == 0.0
