//! The OpenAPI 3.1 description of the API, served at `/openapi.json` (hand-written;
//! a test checks it is valid JSON and names every route).

pub const DOCUMENT: &str = r##"{
  "openapi": "3.1.0",
  "info": {
    "title": "Slope gateway operator API",
    "version": "1",
    "description": "Devices, their slopes, admission and lineage; divergences; peers; operator actions. Bound to 127.0.0.1 by default. POST routes need `Authorization: Bearer <api.token>`."
  },
  "components": {
    "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
    "parameters": {
      "id": { "name": "id", "in": "path", "required": true, "description": "Device id, 64 hex characters", "schema": { "type": "string", "pattern": "^[0-9a-f]{64}$" } }
    },
    "schemas": {
      "Admission": { "type": "string", "enum": ["full", "restricted", "monitored", "deferred", "refused", "quarantined"] },
      "Scope": { "type": ["string", "null"], "enum": ["full", "restricted", "none", null] },
      "DeviceSummary": {
        "type": "object",
        "properties": {
          "device": { "type": "string" }, "admission": { "$ref": "#/components/schemas/Admission" },
          "depth": { "type": "integer" }, "head_seq": { "type": "integer" }, "epoch": { "type": "integer" },
          "witnesses": { "type": "integer" }, "quarantined": { "type": "boolean" }, "last_seen_ms": { "type": "integer" }
        }
      },
      "Error": { "type": "object", "properties": { "error": { "type": "string" } } }
    }
  },
  "paths": {
    "/v1/status": { "get": { "summary": "Gateway identity, counts, lineage head", "responses": { "200": { "description": "status" } } } },
    "/v1/devices": {
      "get": {
        "summary": "Devices with admission and slope depth, in id order",
        "parameters": [
          { "name": "after", "in": "query", "schema": { "type": "string" }, "description": "Page after this device id" },
          { "name": "limit", "in": "query", "schema": { "type": "integer", "maximum": 1000 } }
        ],
        "responses": { "200": { "description": "devices", "content": { "application/json": { "schema": { "type": "array", "items": { "$ref": "#/components/schemas/DeviceSummary" } } } } } }
      }
    },
    "/v1/devices/{id}": {
      "get": {
        "summary": "One device: slope, admission and reasons, grant, quarantine and proof, witnesses, RF profile; `suites` it speaks and, for suite 2, `compact` (anchored chain, head interval and chain position, frame counters)",
        "parameters": [ { "$ref": "#/components/parameters/id" } ],
        "responses": { "200": { "description": "device" }, "404": { "description": "unknown device" } }
      }
    },
    "/v1/devices/{id}/lineage": {
      "get": {
        "summary": "The newest lineage records about the device",
        "parameters": [ { "$ref": "#/components/parameters/id" }, { "name": "limit", "in": "query", "schema": { "type": "integer" } } ],
        "responses": { "200": { "description": "records, oldest first" } }
      }
    },
    "/v1/devices/{id}/release": {
      "post": {
        "summary": "Operator: release from quarantine (recorded in the lineage)",
        "security": [ { "bearer": [] } ],
        "parameters": [ { "$ref": "#/components/parameters/id" } ],
        "requestBody": { "content": { "application/json": { "schema": { "type": "object", "properties": { "note": { "type": "string" } } } } } },
        "responses": { "200": { "description": "released" }, "401": { "description": "bad token" }, "403": { "description": "no token configured" }, "409": { "description": "not quarantined" } }
      }
    },
    "/v1/devices/{id}/pin": {
      "post": {
        "summary": "Operator: pin a scope (null unpins); recorded in the lineage",
        "security": [ { "bearer": [] } ],
        "parameters": [ { "$ref": "#/components/parameters/id" } ],
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "properties": { "scope": { "$ref": "#/components/schemas/Scope" }, "note": { "type": "string" } } } } } },
        "responses": { "200": { "description": "pinned" }, "401": { "description": "bad token" }, "404": { "description": "unknown device" } }
      }
    },
    "/v1/divergences": {
      "get": {
        "summary": "Divergence proofs held, in device order, each re-verified on read with its suite's verifier (`suite`, `seq`: the conflicting position or interval, `verified`, `proof` in hex)",
        "parameters": [
          { "name": "after", "in": "query", "schema": { "type": "string" }, "description": "Page after this device id" },
          { "name": "limit", "in": "query", "schema": { "type": "integer", "maximum": 1000 }, "description": "Default 100" }
        ],
        "responses": { "200": { "description": "proofs" } }
      }
    },
    "/v1/peers": { "get": { "summary": "Connected gateways: peer id, gossipsub score, addresses (listen addresses from identify, then the remote address of each live connection)", "responses": { "200": { "description": "peers" } } } },
    "/v1/lineage/verify": { "get": { "summary": "Re-verifies the whole hash-chained lineage", "responses": { "200": { "description": "result" } } } },
    "/metrics": { "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "text exposition" } } } },
    "/openapi.json": { "get": { "summary": "This document", "responses": { "200": { "description": "OpenAPI 3.1" } } } }
  }
}"##;

#[cfg(test)]
mod tests {
    #[test]
    fn document_is_json_and_complete() {
        let v: serde_json::Value = serde_json::from_str(super::DOCUMENT).unwrap();
        let paths = v["paths"].as_object().unwrap();
        for p in [
            "/v1/status",
            "/v1/devices",
            "/v1/devices/{id}",
            "/v1/devices/{id}/lineage",
            "/v1/devices/{id}/release",
            "/v1/devices/{id}/pin",
            "/v1/divergences",
            "/v1/peers",
            "/v1/lineage/verify",
            "/metrics",
        ] {
            assert!(paths.contains_key(p), "{p}");
        }
    }
}
