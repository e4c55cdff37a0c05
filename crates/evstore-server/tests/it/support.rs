//! Shared helpers: a server on an ephemeral port over a fresh store, and a client.

use evstore_server::{Server, ServerConfig};
use reqwest::Client;
use serde_json::Value;

/// A running server over a store in its own temporary directory.
pub struct TestServer {
    pub server: Option<Server>,
    pub base: String,
    pub client: Client,
    /// Keeps the store's directory until the test ends.
    dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with default settings on 127.0.0.1:0.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server with settings changed by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shop.evs");
        let mut config = ServerConfig::new(&file);
        config.listen = "127.0.0.1:0".parse().unwrap();
        configure(&mut config);
        let server = Server::start(config).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        TestServer {
            server: Some(server),
            base,
            client: Client::new(),
            dir,
        }
    }

    /// The store file.
    pub fn file(&self) -> std::path::PathBuf {
        self.dir.path().join("shop.evs")
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST `path` (no body); the status and the JSON answer.
    pub async fn post(&self, path: &str) -> (u16, Value) {
        let r = self.client.post(self.url(path)).send().await.unwrap();
        status_json(r).await
    }

    /// POST `path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        status_json(r).await
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        status_json(r).await
    }

    /// Create an order for `user` through the seed's query-string API; its id.
    pub async fn create_order(&self, user: &str) -> String {
        let (status, body) = self.post(&format!("/orders?user_id={user}")).await;
        assert_eq!(status, 200, "{body}");
        body["order_id"].as_str().unwrap().to_string()
    }

    /// Stop the server gracefully.
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
    }
}

/// The status and the body as JSON (`Value::Null` if it is not JSON).
pub async fn status_json(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Assert `r` is a problem document of `status` and return it.
pub async fn assert_problem(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status, "status");
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert_eq!(ct, "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["type"]
        .as_str()
        .unwrap()
        .starts_with("urn:evstore:problem:"));
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}
