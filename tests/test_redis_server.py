import redis


def test_the_suite_gets_a_real_redis(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set("recsite:test", b"\x00\x01")
    assert client.get("recsite:test") == b"\x00\x01"
    assert client.info("server")["redis_version"]
