//! Shared helpers: a server on an ephemeral port over a fresh store (a file in a temporary
//! directory, or a PostgreSQL schema of its own), a client, and [`on_both_backends!`].

use evstore_postgres::testing::TestStore;
use evstore_server::{Server, ServerConfig};
use reqwest::Client;
use serde_json::Value;

/// Which store a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A log file in a temporary directory.
    File,
    /// A fresh schema on the server named by `EVSTORE_PG_URL` (dropped at the end).
    Postgres,
}

/// A running server over a store of its own.
pub struct TestServer {
    pub server: Option<Server>,
    pub base: String,
    pub client: Client,
    pub backend: Backend,
    /// The configuration it was started with (for [`TestServer::restart`]).
    pub config: ServerConfig,
    /// Keeps the store's directory until the test ends (unused on PostgreSQL).
    dir: tempfile::TempDir,
    /// The PostgreSQL schema (dropped after the server, fields drop in order).
    pub pg: Option<TestStore>,
}

impl TestServer {
    /// A file-store server with default settings on 127.0.0.1:0.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A file-store server with settings changed by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        TestServer::start_on_with(Backend::File, "file", configure)
            .await
            .unwrap()
    }

    /// A server on `backend` with default settings; `None` when PostgreSQL tests skip
    /// (`EVSTORE_PG_URL` unset, see `evstore_postgres::testing`).
    pub async fn start_on(backend: Backend, test: &str) -> Option<TestServer> {
        TestServer::start_on_with(backend, test, |_| {}).await
    }

    /// [`TestServer::start_on`] with settings changed by `configure`.
    pub async fn start_on_with(
        backend: Backend,
        test: &str,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Option<TestServer> {
        let dir = tempfile::tempdir().unwrap();
        let (mut config, pg) = match backend {
            Backend::File => (ServerConfig::new(dir.path().join("shop.evs")), None),
            Backend::Postgres => {
                // The synchronous client must not run on an async worker.
                let test = test.to_string();
                let pg = tokio::task::spawn_blocking(move || TestStore::fresh(&test))
                    .await
                    .unwrap()?;
                (ServerConfig::postgres(pg.schema_url()), Some(pg))
            }
        };
        config.listen = "127.0.0.1:0".parse().unwrap();
        configure(&mut config);
        let server = Server::start(config.clone()).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        Some(TestServer {
            server: Some(server),
            base,
            client: Client::new(),
            backend,
            config,
            dir,
            pg,
        })
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

    /// Stop the server gracefully and start a new one on the same store (a new port).
    pub async fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
        let server = Server::start(self.config.clone()).await.unwrap();
        self.base = format!("http://{}", server.local_addr());
        self.server = Some(server);
    }

    /// Stop the server gracefully, then drop the PostgreSQL schema.
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
        if let Some(pg) = self.pg.take() {
            tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
        }
    }
}

impl Drop for TestServer {
    /// A test that failed before [`TestServer::stop`]: still drop the schema, off the async
    /// workers (the synchronous client cannot run there).
    fn drop(&mut self) {
        if let Some(pg) = self.pg.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                tokio::task::block_in_place(move || drop(pg));
            } else {
                drop(pg);
            }
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

/// Run a scenario on both backends: `on_both_backends!(name, |t| async move { ... });` makes a
/// module `name` with the tests `file` and `postgres` (which skips without `EVSTORE_PG_URL`),
/// each handing the scenario a fresh [`TestServer`].
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $scenario:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn file() {
                let t = $crate::support::TestServer::start_on(
                    $crate::support::Backend::File,
                    concat!(stringify!($name), "::file"),
                )
                .await
                .unwrap();
                ($scenario)(t).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(t) = $crate::support::TestServer::start_on(
                    $crate::support::Backend::Postgres,
                    concat!(stringify!($name), "::postgres"),
                )
                .await
                else {
                    return;
                };
                ($scenario)(t).await;
            }
        }
    };
}
