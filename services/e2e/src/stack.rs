//! The services of a namespace running in-process on ephemeral ports, each wired by its
//! own `build` and `serve`, exactly as its binary does.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinHandle;
use weft_alerting::{Alerting, AlertingConfig};
use weft_ingest::{Ingest, IngestConfig, IngestListeners};
use weft_model::PartitionSet;
use weft_model::sampling::SamplingPolicy;
use weft_query::{Query, QueryConfig};
use weft_runtime::config::Env;
use weft_runtime::shutdown::CancellationToken;
use weft_sampler::{Sampler, SamplerConfig};
use weft_testkit::Namespace;

/// Messages the sampler's span consumers have not yet had delivered, and those delivered
/// but not yet acknowledged.
pub async fn sampler_backlog(bus: &weft_bus::Bus) -> (u64, u64) {
    let stream = bus
        .jetstream()
        .get_stream(bus.subjects().stream(weft_bus::Signal::Spans))
        .await
        .expect("the span stream");
    let (mut pending, mut unacked) = (0, 0);
    for partition in PartitionSet::all(bus.config().partitions).iter() {
        let name = bus.subjects().consumer(
            weft_sampler::CONSUMER_GROUP,
            weft_bus::Signal::Spans,
            partition,
        );
        if let Ok(info) = stream.consumer_info(name).await {
            pending += info.num_pending;
            unacked += info.num_ack_pending as u64;
        }
    }
    (pending, unacked)
}

/// Knobs a test may turn.
#[derive(Clone, Debug)]
pub struct StackOptions {
    pub max_request_bytes: usize,
    pub max_decompressed_bytes: usize,
    /// Short so failure tests see redelivery quickly.
    pub ack_wait: Duration,
    /// How long ingest and query trust a key lookup.
    pub key_cache_ttl: Duration,
    /// How often ingest writes usage counts (they are written on shutdown too).
    pub usage_flush_interval: Duration,
    /// Whether the stack starts a sampler owning every partition; a test that starts
    /// (and kills) its own says no.
    pub sampler: bool,
    /// `WEFT_PUBLIC_URL` of the query replicas; when `None`, each replica's own address.
    pub public_url: Option<String>,
    /// `WEFT_PASSWORD_HASHING_CONCURRENCY` and `WEFT_PASSWORD_HASHING_QUEUE`.
    pub password_hashing_concurrency: usize,
    pub password_hashing_queue: usize,
    /// `WEFT_PASSWORD_ATTEMPTS_PER_ADDRESS`: every test client is 127.0.0.1.
    pub password_attempts_per_address: u32,
    /// `WEFT_TRUSTED_PROXIES`.
    pub trusted_proxies: String,
    /// The samplers' policy for tenants without one of their own
    /// (`WEFT_SAMPLER_DEFAULT_POLICY`): keep-all, so that suites about something else
    /// find every trace they send; sampling suites use the product's default.
    pub default_policy: SamplingPolicy,
    /// `WEFT_SAMPLER_DECISION_WAIT` and `WEFT_SAMPLER_QUIET_TIME`: short, so traces are
    /// stored within a second or so.
    pub decision_wait: Duration,
    pub quiet_time: Duration,
    /// Whether the stack starts an alerting replica (after query, whose address its
    /// links point at).
    pub alerting: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            max_request_bytes: 4 << 20,
            max_decompressed_bytes: 16 << 20,
            ack_wait: Duration::from_secs(30),
            key_cache_ttl: Duration::from_secs(5),
            usage_flush_interval: Duration::from_millis(300),
            sampler: true,
            public_url: None,
            password_hashing_concurrency: 2,
            password_hashing_queue: 4,
            password_attempts_per_address: 100,
            trusted_proxies: String::new(),
            default_policy: SamplingPolicy::keep_all(),
            decision_wait: Duration::from_secs(2),
            quiet_time: Duration::from_millis(150),
            alerting: true,
        }
    }
}

const LOCAL: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// One running service instance with its own shutdown, so a test can stop it (as a
/// graceful restart would) while the rest of the stack keeps running. A sampler runs on
/// a runtime of its own, as in a process of its own, so a test can also kill it.
pub struct Replica {
    /// The HTTP address: OTLP/HTTP for ingest, the health port for the sampler, the
    /// dashboard and API for query. Each serves `/metrics`.
    pub addr: SocketAddr,
    /// OTLP/gRPC, for ingest.
    pub grpc: Option<SocketAddr>,
    /// The service, named in the warnings of a drain that takes long.
    service: &'static str,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Replica {
    fn spawn(
        service: &'static str,
        addr: SocketAddr,
        grpc: Option<SocketAddr>,
        parent: &CancellationToken,
        serve: impl FnOnce(CancellationToken) -> JoinHandle<()>,
    ) -> Replica {
        let shutdown = parent.child_token();
        let task = serve(shutdown.clone());
        Replica {
            addr,
            grpc,
            service,
            shutdown,
            task,
            runtime: None,
        }
    }

    /// Stops this instance gracefully and waits until it has drained.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        self.drained().await;
    }

    /// Waits for the instance to finish after its shutdown was cancelled.
    async fn drained(&mut self) {
        let what = format!("the {} replica at {} to drain", self.service, self.addr);
        weft_runtime::shutdown::draining("e2e stack", &what, &self.shutdown, &mut self.task)
            .await
            .expect("the service panicked");
    }

    /// Ends this instance the way `kill -9` ends a process: every task of its runtime
    /// stops where it is, mid-write or mid-acknowledgement, its connections close, and
    /// nothing drains. Only for a replica on a runtime of its own (a sampler).
    pub fn kill(mut self) {
        self.runtime
            .take()
            .expect("only a replica on its own runtime can be killed")
            .shutdown_background();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        // A runtime may not block its caller's async context while it shuts down.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Ingest (HTTP and gRPC), sampler and query of one namespace.
pub struct Stack {
    pub ns: Namespace,
    pub ingest_http: SocketAddr,
    pub ingest_grpc: SocketAddr,
    pub sampler: SocketAddr,
    pub query: SocketAddr,
    /// The alerting replica's health port (unbound when the stack starts none).
    pub alerting: SocketAddr,
    pub http: reqwest::Client,
    ingest_config: IngestConfig,
    sampler_config: SamplerConfig,
    query_config: QueryConfig,
    alerting_config: AlertingConfig,
    shutdown: CancellationToken,
    replicas: Vec<Replica>,
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with(Namespace::create().await, StackOptions::default()).await
    }

    pub async fn start_with(ns: Namespace, options: StackOptions) -> Stack {
        let defaults = Env::default();
        let mut ingest_config = IngestConfig::from_env(&defaults).expect("defaults");
        ingest_config.http_addr = LOCAL;
        ingest_config.grpc_addr = LOCAL;
        ingest_config.bus = ns.bus.clone();
        ingest_config.postgres = ns.postgres.clone();
        ingest_config.limits.max_request_bytes = options.max_request_bytes;
        ingest_config.limits.max_decompressed_bytes = options.max_decompressed_bytes;
        ingest_config.key_cache_ttl = options.key_cache_ttl;
        ingest_config.usage_flush_interval = options.usage_flush_interval;

        let mut sampler_config = SamplerConfig::from_env(&defaults).expect("defaults");
        sampler_config.http_addr = LOCAL;
        sampler_config.bus = ns.bus.clone();
        sampler_config.clickhouse = ns.clickhouse.clone();
        sampler_config.partitions = PartitionSet::all(ns.bus.partitions);
        sampler_config.consumer.fetch_wait = Duration::from_millis(200);
        sampler_config.consumer.ack_wait = options.ack_wait;
        sampler_config.writer.flush_interval = Duration::from_millis(200);
        sampler_config.writer.shutdown_grace = Duration::from_secs(1);
        sampler_config.postgres = ns.postgres.clone();
        sampler_config.sampling.default_policy = options.default_policy.clone();
        sampler_config.sampling.decision_wait = options.decision_wait;
        sampler_config.sampling.quiet_time = options.quiet_time;

        let mut query_config = QueryConfig::from_env(&defaults).expect("defaults");
        query_config.http_addr = LOCAL;
        query_config.clickhouse = ns.clickhouse.clone();
        query_config.postgres = ns.postgres.clone();
        query_config.bus = ns.bus.clone();
        query_config.key_cache_ttl = options.key_cache_ttl;
        // Shared by replicas, as in production, so a session works on any of them.
        query_config.session_secret = Some(uuid::Uuid::new_v4().simple().to_string().repeat(2));
        // Empty means each replica's own address (see `start_query_with`).
        query_config.public_url = options.public_url.unwrap_or_default();
        query_config.login.hashing_concurrency = options.password_hashing_concurrency;
        query_config.login.hashing_queue = options.password_hashing_queue;
        query_config.login.attempts_per_address = options.password_attempts_per_address;
        query_config.login.trusted_proxies =
            options.trusted_proxies.parse().expect("trusted proxies");
        // The tests' receivers listen on 127.0.0.1, as WEFT_ALERTING_ALLOW_PRIVATE_TARGETS
        // allows; the guard itself is tested with replicas that refuse them.
        query_config.alerting_targets = weft_model::alerting::TargetPolicy::AllowPrivate;

        let mut alerting_config = AlertingConfig::from_env(&defaults).expect("defaults");
        alerting_config.http_addr = LOCAL;
        alerting_config.bus = ns.bus.clone();
        alerting_config.clickhouse = ns.clickhouse.clone();
        alerting_config.postgres = ns.postgres.clone();
        alerting_config.fetch_wait = Duration::from_millis(200);
        // Short, so alerts move within a second or two.
        alerting_config.eval_interval = Duration::from_millis(500);
        alerting_config.delivery.poll_interval = Duration::from_millis(100);
        alerting_config.delivery.retry_base = Duration::from_millis(300);
        alerting_config.delivery.timeout = Duration::from_secs(3);
        alerting_config.delivery.trace_wait = Duration::from_secs(15);
        alerting_config.delivery.targets = weft_model::alerting::TargetPolicy::AllowPrivate;

        let mut stack = Stack {
            ns,
            ingest_http: LOCAL,
            ingest_grpc: LOCAL,
            sampler: LOCAL,
            query: LOCAL,
            alerting: LOCAL,
            http: reqwest::Client::new(),
            ingest_config,
            sampler_config,
            query_config,
            alerting_config,
            shutdown: CancellationToken::new(),
            replicas: Vec::new(),
        };
        let ingest = stack.start_ingest().await;
        (stack.ingest_http, stack.ingest_grpc) = (ingest.addr, ingest.grpc.expect("grpc"));
        stack.replicas.push(ingest);
        // The set-up page shows these; users paste them into their SDK's configuration.
        stack.query_config.public_ingest_http_url = format!("http://{}", stack.ingest_http);
        stack.query_config.public_ingest_grpc_url = format!("http://{}", stack.ingest_grpc);
        if options.sampler {
            let sampler = stack.start_sampler().await;
            stack.sampler = sampler.addr;
            stack.replicas.push(sampler);
        }
        let query = stack.start_query().await;
        stack.query = query.addr;
        stack.replicas.push(query);
        stack.alerting_config.public_url = format!("http://{}", stack.query);
        if options.alerting {
            let alerting = stack.start_alerting().await;
            stack.alerting = alerting.addr;
            stack.replicas.push(alerting);
        }

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

    /// Another ingest replica of the stack (HTTP and gRPC), stopped with the stack or
    /// earlier by [`Replica::stop`].
    pub async fn start_ingest(&self) -> Replica {
        let listeners = IngestListeners::bind(&self.ingest_config)
            .await
            .expect("bind ingest");
        let (addr, grpc) = (
            listeners.http.local_addr().expect("addr"),
            listeners.grpc.local_addr().expect("addr"),
        );
        let ingest = Ingest::build(self.ingest_config.clone())
            .await
            .expect("build ingest");
        Replica::spawn("ingest", addr, Some(grpc), &self.shutdown, |token| {
            tokio::spawn(async move { ingest.serve(listeners, token).await.expect("ingest") })
        })
    }

    /// Another sampler replica, owning `partitions` (all by default in the stack's own).
    /// It runs on a runtime of its own, where it binds and connects too, so
    /// [`Replica::kill`] ends it whole, as `kill -9` ends a sampler process.
    pub async fn start_sampler_owning(&self, partitions: PartitionSet) -> Replica {
        self.start_sampler_with(|config| config.partitions = partitions)
            .await
    }

    /// Another sampler replica, its configuration adjusted from the stack's (as
    /// [`Stack::start_sampler_owning`]).
    pub async fn start_sampler_with(&self, adjust: impl FnOnce(&mut SamplerConfig)) -> Replica {
        let mut config = self.sampler_config.clone();
        adjust(&mut config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sampler")
            .enable_all()
            .build()
            .expect("a runtime for the sampler");
        let shutdown = self.shutdown.child_token();
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let token = shutdown.clone();
        let task = runtime.spawn(async move {
            let listener = weft_runtime::service::bind(config.http_addr, "sampler health")
                .await
                .expect("bind sampler");
            let _ = addr_tx.send(listener.local_addr().expect("addr"));
            let sampler = Sampler::build(config).await.expect("build sampler");
            sampler.serve(listener, token).await.expect("sampler");
        });
        let addr = addr_rx.await.expect("the sampler bound its port");
        Replica {
            addr,
            grpc: None,
            service: "sampler",
            shutdown,
            task,
            runtime: Some(runtime),
        }
    }

    async fn start_sampler(&self) -> Replica {
        self.start_sampler_owning(self.sampler_config.partitions.clone())
            .await
    }

    /// Another alerting replica, on a runtime of its own (so [`Replica::kill`] ends it
    /// as `kill -9` would), with a replica id of its own.
    pub async fn start_alerting(&self) -> Replica {
        self.start_alerting_with(|_| {}).await
    }

    /// Another alerting replica, its configuration adjusted from the stack's.
    pub async fn start_alerting_with(&self, adjust: impl FnOnce(&mut AlertingConfig)) -> Replica {
        let mut config = self.alerting_config.clone();
        config.replica_id = format!(
            "alerting-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        adjust(&mut config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("alerting")
            .enable_all()
            .build()
            .expect("a runtime for alerting");
        let shutdown = self.shutdown.child_token();
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let token = shutdown.clone();
        let task = runtime.spawn(async move {
            let listener = weft_runtime::service::bind(config.http_addr, "alerting health")
                .await
                .expect("bind alerting");
            let _ = addr_tx.send(listener.local_addr().expect("addr"));
            let alerting = Alerting::build(config).await.expect("build alerting");
            alerting.serve(listener, token).await.expect("alerting");
        });
        let addr = addr_rx.await.expect("alerting bound its port");
        Replica {
            addr,
            grpc: None,
            service: "alerting",
            shutdown,
            task,
            runtime: Some(runtime),
        }
    }

    pub fn alerting_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.alerting)
    }

    /// Another query replica of the stack.
    pub async fn start_query(&self) -> Replica {
        self.start_query_with(|_| {}).await
    }

    /// Another query replica, its config changed by `adjust` (limits, for example).
    pub async fn start_query_with(&self, adjust: impl FnOnce(&mut QueryConfig)) -> Replica {
        let mut config = self.query_config.clone();
        adjust(&mut config);
        let listener = weft_runtime::service::bind(config.http_addr, "query")
            .await
            .expect("bind query");
        let addr = listener.local_addr().expect("addr");
        if config.public_url.is_empty() {
            // The links the dashboard builds point where this replica really is.
            config.public_url = format!("http://{addr}");
        }
        let query = Query::build(config).await.expect("build query");
        Replica::spawn("query", addr, None, &self.shutdown, |token| {
            tokio::spawn(async move { query.serve(listener, token).await.expect("query") })
        })
    }

    /// Keeps a replica running until the stack stops.
    pub fn keep(&mut self, replica: Replica) -> SocketAddr {
        let addr = replica.addr;
        self.replicas.push(replica);
        addr
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
        let replica = self.start_query().await;
        self.keep(replica)
    }

    /// Another ingest replica of the same stack; returns its OTLP/HTTP address.
    pub async fn start_ingest_replica(&mut self) -> SocketAddr {
        let replica = self.start_ingest().await;
        self.keep(replica)
    }

    pub fn ingest_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.ingest_http)
    }

    pub fn query_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.query)
    }

    pub fn sampler_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.sampler)
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
    /// The samples of a Prometheus `/metrics` page, by series (`name{labels}`); checks
    /// that it is served as Prometheus text.
    pub async fn scrape(&self, url: String) -> std::collections::HashMap<String, f64> {
        let response = self.http.get(url).send().await.expect("scrape");
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let text = response.text().await.expect("metrics text");
        assert!(text.contains("# TYPE "), "{text}");
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect()
    }

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

    /// Runs `sql` on the namespace's ClickHouse database, as an operator would, for tests
    /// that plant or damage data; returns the answer, and fails the test with the
    /// server's message when ClickHouse refuses.
    pub async fn clickhouse_sql(&self, sql: &str) -> String {
        let response = self
            .http
            .post(format!(
                "{}/?database={}",
                self.ns.clickhouse.url, self.ns.clickhouse.database
            ))
            .body(sql.to_owned())
            .send()
            .await
            .expect("clickhouse request");
        let status = response.status();
        let text = response.text().await.expect("clickhouse answer");
        assert!(status.is_success(), "{sql}: {text}");
        text
    }

    /// Stops every service (draining the sampler) and drops the namespace.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for mut replica in self.replicas {
            replica.drained().await;
        }
        weft_runtime::shutdown::draining(
            "e2e stack",
            "the namespace's teardown",
            &self.shutdown,
            self.ns.teardown(),
        )
        .await;
    }
}
