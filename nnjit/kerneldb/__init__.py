"""A crowdsourced kernel database: devices share the schedules they measured, as data, never code.

    nnjit kernel-db serve --db sqlite:////var/lib/nnjit/kernels.sqlite --port 8765
    nnjit tune model.onnx --target wasm --service http://127.0.0.1:8765

* `schema`: the JSON requests, validated field by field (exact keys, types, lengths, finite medians);
* `space`: whether a schedule belongs to its template's full valid space under a device's limits;
* `store`: one `Store` interface, `SqliteStore` and `PostgresStore` behind a database URL;
* `server`: the aiohttp service (`/v1/lookup`, `/v1/records`, `/v1/health`), rate limits and CORS;
* `client`: `KernelDbClient`, a small synchronous client; `shared`: what the tuner does with downloads.

docs/kernel-db.md describes the API, the validation rules and the trust model.
"""
