//! The services of a namespace running in-process on ephemeral ports, wired exactly as
//! their binaries wire them.

use crate::namespace::Namespace;
use std::net::SocketAddr;
use std::time::Duration;
use weft_bus::Bus;
use weft_ingest::{Ingest, IngestConfig};
use weft_model::PartitionSet;
use weft_query::QueryConfig;
use weft_runtime::shutdown::CancellationToken;
use weft_sampler::SamplerConfig;

/// Knobs a test may turn.
#[derive(Clone, Debug)]
pub struct StackOptions {
    pub max_request_bytes: usize,
    pub max_decompressed_bytes: usize,
    /// Short so failure tests see redelivery quickly.
    pub ack_wait: Duration,
    /// How long ingest and query trust a key lookup.
    pub key_cache_ttl: Duration,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            max_request_bytes: 4 << 20,
            max_decompressed_bytes: 16 << 20,
            ack_wait: Duration::from_secs(30),
            key_cache_ttl: Duration::from_secs(5),
        }
    }
}

/// Ingest (HTTP and gRPC), sampler and query of one namespace.
pub struct Stack {
    pub ns: Namespace,
    pub ingest_http: SocketAddr,
    pub ingest_grpc: SocketAddr,
    pub query: SocketAddr,
    pub http: reqwest::Client,
    ingest_config: IngestConfig,
    query_config: QueryConfig,
    shutdown: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
}

async fn listener() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// A query service with `config` on an ephemeral port, until `shutdown`.
async fn serve_query(
    config: &QueryConfig,
    shutdown: &CancellationToken,
    tasks: &mut tokio::task::JoinSet<()>,
) -> SocketAddr {
    let router = weft_query::router(config).await.expect("query router");
    let (listener, addr) = listener().await;
    let token = shutdown.clone();
    tasks.spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(token.cancelled_owned())
            .await
            .expect("query");
    });
    addr
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with(Namespace::create().await, StackOptions::default()).await
    }

    pub async fn start_with(ns: Namespace, options: StackOptions) -> Stack {
        let shutdown = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();

        let mut ingest_config =
            IngestConfig::from_env(&weft_runtime::config::Env::default()).expect("defaults");
        ingest_config.bus = ns.bus.clone();
        ingest_config.postgres = ns.postgres.clone();
        ingest_config.limits.max_request_bytes = options.max_request_bytes;
        ingest_config.limits.max_decompressed_bytes = options.max_decompressed_bytes;
        ingest_config.key_cache_ttl = options.key_cache_ttl;
        ingest_config.usage_flush_interval = Duration::from_millis(300);
        let ingest = Ingest::build(&ingest_config).await.expect("build ingest");
        let (http_listener, ingest_http) = listener().await;
        let (grpc_listener, ingest_grpc) = listener().await;
        let router = ingest.http_router();
        let token = shutdown.clone();
        tasks.spawn(async move {
            axum::serve(http_listener, router)
                .with_graceful_shutdown(token.cancelled_owned())
                .await
                .expect("ingest http");
        });
        let routes = ingest.grpc_routes();
        let token = shutdown.clone();
        tasks.spawn(async move {
            weft_ingest::serve_grpc(routes, grpc_listener, token)
                .await
                .expect("ingest grpc");
        });

        let mut sampler_config =
            SamplerConfig::from_env(&weft_runtime::config::Env::default()).expect("defaults");
        sampler_config.bus = ns.bus.clone();
        sampler_config.clickhouse = ns.clickhouse.clone();
        sampler_config.partitions = PartitionSet::all(ns.bus.partitions);
        sampler_config.consumer.fetch_wait = Duration::from_millis(200);
        sampler_config.consumer.ack_wait = options.ack_wait;
        sampler_config.writer.flush_interval = Duration::from_millis(200);
        sampler_config.writer.shutdown_grace = Duration::from_secs(1);
        let bus = Bus::connect(ns.bus.clone()).await.expect("sampler bus");
        let store = ns.store.clone();
        let token = shutdown.clone();
        tasks.spawn(async move {
            weft_sampler::consume(sampler_config, bus, store, token)
                .await
                .expect("sampler");
        });

        let mut query_config =
            QueryConfig::from_env(&weft_runtime::config::Env::default()).expect("defaults");
        query_config.clickhouse = ns.clickhouse.clone();
        query_config.postgres = ns.postgres.clone();
        query_config.bus = ns.bus.clone();
        query_config.key_cache_ttl = options.key_cache_ttl;
        // Shared by replicas, as in production, so a session works on any of them.
        query_config.session_secret = Some(uuid::Uuid::new_v4().simple().to_string().repeat(2));
        // The set-up page shows these; users paste them into their SDK's configuration.
        query_config.public_ingest_http_url = format!("http://{ingest_http}");
        query_config.public_ingest_grpc_url = format!("http://{ingest_grpc}");
        let query = serve_query(&query_config, &shutdown, &mut tasks).await;

        let stack = Stack {
            ns,
            ingest_http,
            ingest_grpc,
            query,
            http: reqwest::Client::new(),
            ingest_config,
            query_config,
            shutdown,
            tasks,
        };
        let ready = format!("http://{}/readyz", stack.ingest_http);
        let http = stack.http.clone();
        crate::eventually("ingest to be ready", Duration::from_secs(20), || {
            let (http, ready) = (http.clone(), ready.clone());
            async move {
                http.get(&ready)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
            }
        })
        .await;
        stack
    }

    /// The secret the query replicas sign sessions with, for tests that craft them.
    pub fn session_secret(&self) -> &str {
        self.query_config
            .session_secret
            .as_deref()
            .expect("stacks set a session secret")
    }

    /// Another query replica of the same stack; returns its address.
    pub async fn start_query_replica(&mut self) -> SocketAddr {
        serve_query(&self.query_config, &self.shutdown, &mut self.tasks).await
    }

    /// Another ingest replica of the same stack (OTLP/HTTP only); returns its address.
    pub async fn start_ingest_replica(&mut self) -> SocketAddr {
        let ingest = Ingest::build(&self.ingest_config)
            .await
            .expect("build ingest replica");
        let (listener, addr) = listener().await;
        let router = ingest.http_router();
        let token = self.shutdown.clone();
        self.tasks.spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(token.cancelled_owned())
                .await
                .expect("ingest replica");
        });
        addr
    }

    pub fn ingest_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.ingest_http)
    }

    pub fn query_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.query)
    }

    /// Sends `request` to OTLP/HTTP ingest as protobuf with `key`; returns the HTTP status.
    pub async fn export(
        &self,
        key: &str,
        request: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
    ) -> u16 {
        use prost::Message;
        self.http
            .post(self.ingest_url("/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .header("x-api-key", key)
            .body(request.encode_to_vec())
            .send()
            .await
            .expect("export request")
            .status()
            .as_u16()
    }

    /// GET on the query API with a key; returns status and JSON body.
    pub async fn query_get(&self, path: &str, key: &str) -> (u16, serde_json::Value) {
        let response = self
            .http
            .get(self.query_url(path))
            .header("x-api-key", key)
            .send()
            .await
            .expect("query request");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Polls trace-by-id until the trace has `spans` spans.
    pub async fn wait_for_trace(
        &self,
        read_key: &str,
        trace_id: &str,
        spans: usize,
    ) -> serde_json::Value {
        let path = format!("/api/v1/traces/{trace_id}");
        crate::eventually(
            &format!("trace {trace_id} with {spans} spans"),
            Duration::from_secs(30),
            || async {
                let (status, body) = self.query_get(&path, read_key).await;
                (status == 200 && body["spans"].as_array().map(Vec::len) == Some(spans))
                    .then_some(body)
            },
        )
        .await
    }

    /// Stops the services (draining the sampler) and drops the namespace.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.ns.teardown().await;
    }
}
