//! The small e-commerce system whose traffic is simulated: its services and the user
//! requests that flow through them.
//!
//! `frontend` serves the pages and calls `checkout`, `cart` and `inventory`; `checkout`
//! calls `cart`, `inventory` and `payment`; each service talks to PostgreSQL and Redis
//! through client spans, and `payment` calls an external payment provider.

use crate::tree::{Category, NodeId, TraceTree, double_attr, int_attr, str_attr};
use rand::Rng;

/// A service of the shop, emitted as one OTLP resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    Frontend,
    Checkout,
    Cart,
    Payment,
    Inventory,
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::Frontend,
        Service::Checkout,
        Service::Cart,
        Service::Payment,
        Service::Inventory,
    ];

    /// The `service.name` resource attribute.
    pub fn name(self) -> &'static str {
        match self {
            Service::Frontend => "frontend",
            Service::Checkout => "checkout",
            Service::Cart => "cart",
            Service::Payment => "payment",
            Service::Inventory => "inventory",
        }
    }

    /// The `service.version` resource attribute.
    pub fn version(self) -> &'static str {
        match self {
            Service::Frontend => "2.14.1",
            Service::Checkout => "1.9.0",
            Service::Cart => "1.22.3",
            Service::Payment => "3.1.4",
            Service::Inventory => "0.18.2",
        }
    }

    /// Position in [`Service::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The user requests the shop serves, with how common each one is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    ViewProduct,
    ViewCart,
    AddToCart,
    ViewCheckout,
    PlaceOrder,
}

impl Scenario {
    const WEIGHTED: [(Scenario, u32); 5] = [
        (Scenario::ViewProduct, 35),
        (Scenario::ViewCart, 20),
        (Scenario::AddToCart, 20),
        (Scenario::ViewCheckout, 15),
        (Scenario::PlaceOrder, 10),
    ];

    pub fn pick<R: Rng>(rng: &mut R) -> Scenario {
        let total: u32 = Self::WEIGHTED.iter().map(|(_, weight)| weight).sum();
        let mut draw = rng.random_range(0..total);
        for (scenario, weight) in Self::WEIGHTED {
            if draw < weight {
                return scenario;
            }
            draw -= weight;
        }
        Scenario::ViewProduct
    }

    /// Spans the scenario has with one item and no cache miss, and how many each further
    /// item adds; used to pick the number of items that brings a trace close to the size
    /// asked for.
    fn size(self) -> (usize, usize) {
        match self {
            Scenario::ViewProduct => (9, 1),
            Scenario::ViewCart => (5, 1),
            Scenario::AddToCart => (9, 1),
            Scenario::ViewCheckout => (12, 1),
            Scenario::PlaceOrder => (18, 3),
        }
    }

    /// Builds the scenario's operations, then adds or drops operations so the trace has
    /// exactly `spans` spans (at least one).
    pub fn build<R: Rng>(self, rng: &mut R, spans: usize) -> TraceTree {
        /// More items than a cart plausibly holds; bigger traces grow with extra queries.
        const MAX_ITEMS: usize = 25;
        let (base, per_item) = self.size();
        let items = (1 + spans.saturating_sub(base) / per_item).min(MAX_ITEMS);
        let mut shop = ShopTrace {
            tree: TraceTree::new(),
            rng,
        };
        match self {
            Scenario::ViewProduct => shop.view_product(items),
            Scenario::ViewCart => shop.view_cart(items),
            Scenario::AddToCart => shop.add_to_cart(items),
            Scenario::ViewCheckout => shop.view_checkout(items),
            Scenario::PlaceOrder => shop.place_order(items),
        }
        shop.fill_to(spans);
        shop.tree.truncate(spans);
        shop.tree
    }
}

const USER_AGENTS: [&str; 3] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
];

/// Builds the operations of one shop request.
struct ShopTrace<'r, R> {
    tree: TraceTree,
    rng: &'r mut R,
}

impl<R: Rng> ShopTrace<'_, R> {
    fn sku(&mut self) -> String {
        format!("SKU-{:05}", self.rng.random_range(1..40_000))
    }

    fn id(&mut self) -> u32 {
        self.rng.random_range(100_000..999_999)
    }

    /// The frontend's server span for a page or API request of a browser.
    fn page(&mut self, method: &str, route: &str, path: &str) -> NodeId {
        let attributes = vec![
            str_attr("http.request.method", method),
            str_attr("http.route", route),
            str_attr("url.path", path),
            str_attr("url.scheme", "https"),
            str_attr("server.address", "shop.example.com"),
            str_attr("network.protocol.version", "1.1"),
            // Documentation range (RFC 5737): looks real, belongs to nobody.
            str_attr(
                "client.address",
                &format!("203.0.113.{}", self.rng.random_range(1..255)),
            ),
            str_attr(
                "user_agent.original",
                USER_AGENTS[self.rng.random_range(0..USER_AGENTS.len())],
            ),
            str_attr("app.user.id", &format!("user-{}", self.id())),
        ];
        let root = self.tree.add(
            self.rng,
            None,
            Service::Frontend,
            Category::HttpServer,
            format!("{method} {route}"),
            attributes,
        );
        self.tree.node_mut(root).http_status = Some(200);
        root
    }

    /// A call from one service to another: the caller's client span and the callee's
    /// server span inside it. Returns the server span.
    fn call(
        &mut self,
        parent: NodeId,
        from: Service,
        to: Service,
        method: &str,
        route: &str,
        path: &str,
    ) -> NodeId {
        let host = to.name();
        let client = self.tree.add(
            self.rng,
            Some(parent),
            from,
            Category::HttpClient,
            format!("{method} {route}"),
            vec![
                str_attr("http.request.method", method),
                str_attr("url.full", &format!("http://{host}:8080{path}")),
                str_attr("url.template", route),
                str_attr("server.address", host),
                int_attr("server.port", 8080),
            ],
        );
        self.tree.node_mut(client).http_status = Some(200);
        let server = self.tree.add(
            self.rng,
            Some(client),
            to,
            Category::HttpServer,
            format!("{method} {route}"),
            vec![
                str_attr("http.request.method", method),
                str_attr("http.route", route),
                str_attr("url.path", path),
                str_attr("url.scheme", "http"),
                str_attr("server.address", host),
                int_attr("server.port", 8080),
                str_attr("network.protocol.version", "1.1"),
            ],
        );
        self.tree.node_mut(server).http_status = Some(200);
        server
    }

    /// A PostgreSQL query made by `service`.
    fn sql(
        &mut self,
        parent: NodeId,
        service: Service,
        operation: &str,
        table: &str,
        statement: &str,
    ) -> NodeId {
        self.tree.add(
            self.rng,
            Some(parent),
            service,
            Category::Database,
            format!("{operation} {table}"),
            vec![
                str_attr("db.system", "postgresql"),
                str_attr("db.name", "shop"),
                str_attr("db.operation", operation),
                str_attr("db.sql.table", table),
                str_attr("db.statement", statement),
                str_attr("server.address", "postgres"),
                int_attr("server.port", 5432),
            ],
        )
    }

    /// A Redis command made by `service`.
    fn redis(&mut self, parent: NodeId, service: Service, command: &str, key: &str) -> NodeId {
        self.tree.add(
            self.rng,
            Some(parent),
            service,
            Category::Cache,
            command.to_owned(),
            vec![
                str_attr("db.system", "redis"),
                str_attr("db.operation", command),
                str_attr("db.statement", &format!("{command} {key}")),
                int_attr("db.redis.database_index", 0),
                str_attr("server.address", "redis"),
                int_attr("server.port", 6379),
            ],
        )
    }

    /// Reads a cart: from Redis, falling back to PostgreSQL on a miss.
    fn load_cart(&mut self, parent: NodeId, cart: u32) {
        self.redis(parent, Service::Cart, "HGETALL", &format!("cart:{cart}"));
        if self.rng.random_bool(0.3) {
            self.sql(
                parent,
                Service::Cart,
                "SELECT",
                "cart_items",
                "SELECT sku, quantity, added_at FROM cart_items WHERE cart_id = $1",
            );
        }
    }

    /// `GET /products/{id}`: the product from cache or database, its stock, the cart
    /// badge and related products.
    fn view_product(&mut self, related: usize) {
        let product = self.sku();
        let root = self.page("GET", "/products/{id}", &format!("/products/{product}"));
        let server = self.call(
            root,
            Service::Frontend,
            Service::Inventory,
            "GET",
            "/api/products/{sku}",
            &format!("/api/products/{product}"),
        );
        self.redis(
            server,
            Service::Inventory,
            "GET",
            &format!("product:{product}"),
        );
        if self.rng.random_bool(0.25) {
            self.sql(
                server,
                Service::Inventory,
                "SELECT",
                "products",
                "SELECT sku, name, description, price_cents FROM products WHERE sku = $1",
            );
        }
        self.sql(
            server,
            Service::Inventory,
            "SELECT",
            "stock",
            "SELECT available FROM stock WHERE sku = $1",
        );
        for _ in 0..related {
            let sku = self.sku();
            self.redis(server, Service::Inventory, "GET", &format!("product:{sku}"));
        }
        let cart = self.id();
        let badge = self.call(
            root,
            Service::Frontend,
            Service::Cart,
            "GET",
            "/api/carts/{id}/count",
            &format!("/api/carts/{cart}/count"),
        );
        self.redis(badge, Service::Cart, "HLEN", &format!("cart:{cart}"));
    }

    /// `GET /cart`: the cart and the details of each item.
    fn view_cart(&mut self, items: usize) {
        let cart = self.id();
        let root = self.page("GET", "/cart", "/cart");
        let server = self.call(
            root,
            Service::Frontend,
            Service::Cart,
            "GET",
            "/api/carts/{id}",
            &format!("/api/carts/{cart}"),
        );
        self.load_cart(server, cart);
        for _ in 0..items {
            let sku = self.sku();
            self.redis(server, Service::Cart, "GET", &format!("product:{sku}"));
        }
    }

    /// `POST /cart/items`: checks stock of each item, then stores them.
    fn add_to_cart(&mut self, items: usize) {
        let cart = self.id();
        let root = self.page("POST", "/cart/items", "/cart/items");
        let server = self.call(
            root,
            Service::Frontend,
            Service::Cart,
            "POST",
            "/api/carts/{id}/items",
            &format!("/api/carts/{cart}/items"),
        );
        let stock = self.call(
            server,
            Service::Cart,
            Service::Inventory,
            "POST",
            "/api/inventory/availability",
            "/api/inventory/availability",
        );
        for _ in 0..items {
            self.sql(
                stock,
                Service::Inventory,
                "SELECT",
                "stock",
                "SELECT available FROM stock WHERE sku = $1",
            );
        }
        self.sql(
            server,
            Service::Cart,
            "INSERT",
            "cart_items",
            "INSERT INTO cart_items (cart_id, sku, quantity) VALUES ($1, $2, $3) \
             ON CONFLICT (cart_id, sku) DO UPDATE SET quantity = cart_items.quantity + $3",
        );
        self.redis(server, Service::Cart, "HSET", &format!("cart:{cart}"));
        self.redis(server, Service::Cart, "EXPIRE", &format!("cart:{cart}"));
    }

    /// `GET /checkout`: the order summary, gathered from cart, inventory and payment
    /// concurrently.
    fn view_checkout(&mut self, items: usize) {
        let cart = self.id();
        let root = self.page("GET", "/checkout", "/checkout");
        let summary = self.call(
            root,
            Service::Frontend,
            Service::Checkout,
            "GET",
            "/api/checkout/summary",
            "/api/checkout/summary",
        );
        self.tree.node_mut(summary).parallel = true;
        let cart_server = self.call(
            summary,
            Service::Checkout,
            Service::Cart,
            "GET",
            "/api/carts/{id}",
            &format!("/api/carts/{cart}"),
        );
        self.load_cart(cart_server, cart);
        let stock = self.call(
            summary,
            Service::Checkout,
            Service::Inventory,
            "POST",
            "/api/inventory/availability",
            "/api/inventory/availability",
        );
        for _ in 0..items {
            let sku = self.sku();
            self.redis(stock, Service::Inventory, "GET", &format!("stock:{sku}"));
        }
        let methods = self.call(
            summary,
            Service::Checkout,
            Service::Payment,
            "GET",
            "/api/payments/methods",
            "/api/payments/methods",
        );
        self.sql(
            methods,
            Service::Payment,
            "SELECT",
            "payment_methods",
            "SELECT id, brand, last4 FROM payment_methods WHERE user_id = $1",
        );
    }

    /// `POST /checkout`: places the order: reads the cart, reserves stock, charges the
    /// card through the payment provider, writes the order.
    fn place_order(&mut self, items: usize) {
        let cart = self.id();
        let order = self.id();
        let root = self.page("POST", "/checkout", "/checkout");
        let server = self.call(
            root,
            Service::Frontend,
            Service::Checkout,
            "POST",
            "/api/orders",
            "/api/orders",
        );
        let cart_server = self.call(
            server,
            Service::Checkout,
            Service::Cart,
            "GET",
            "/api/carts/{id}",
            &format!("/api/carts/{cart}"),
        );
        self.load_cart(cart_server, cart);

        let reserve = self.call(
            server,
            Service::Checkout,
            Service::Inventory,
            "POST",
            "/api/inventory/reservations",
            "/api/inventory/reservations",
        );
        for _ in 0..items {
            self.sql(
                reserve,
                Service::Inventory,
                "SELECT",
                "stock",
                "SELECT available FROM stock WHERE sku = $1 FOR UPDATE",
            );
            self.sql(
                reserve,
                Service::Inventory,
                "UPDATE",
                "stock",
                "UPDATE stock SET available = available - $2 WHERE sku = $1",
            );
        }

        let payment = self.call(
            server,
            Service::Checkout,
            Service::Payment,
            "POST",
            "/api/payments",
            "/api/payments",
        );
        let amount = self.rng.random_range(5.0..900.0_f64);
        let charge = self.tree.add(
            self.rng,
            Some(payment),
            Service::Payment,
            Category::Internal,
            "charge-payment".to_owned(),
            vec![
                double_attr("app.payment.amount", (amount * 100.0).round() / 100.0),
                str_attr("app.payment.currency", "EUR"),
                str_attr("app.payment.method", "card"),
                int_attr("app.order.id", i64::from(order)),
            ],
        );
        let provider = self.tree.add(
            self.rng,
            Some(charge),
            Service::Payment,
            Category::External,
            "POST /v1/charges".to_owned(),
            vec![
                str_attr("http.request.method", "POST"),
                str_attr("url.full", "https://api.payments.example.net/v1/charges"),
                str_attr("server.address", "api.payments.example.net"),
                int_attr("server.port", 443),
                str_attr("peer.service", "payment-provider"),
            ],
        );
        self.tree.node_mut(provider).http_status = Some(200);
        self.sql(
            payment,
            Service::Payment,
            "INSERT",
            "payments",
            "INSERT INTO payments (order_id, amount_cents, status) VALUES ($1, $2, 'captured')",
        );

        self.sql(
            server,
            Service::Checkout,
            "INSERT",
            "orders",
            "INSERT INTO orders (id, user_id, total_cents, status) VALUES ($1, $2, $3, 'placed')",
        );
        for _ in 0..items {
            self.sql(
                server,
                Service::Checkout,
                "INSERT",
                "order_items",
                "INSERT INTO order_items (order_id, sku, quantity, price_cents) VALUES ($1, $2, $3, $4)",
            );
        }
        self.redis(server, Service::Checkout, "DEL", &format!("cart:{cart}"));
    }

    /// Grows the trace to `spans` with the lookups a busy handler makes (sessions,
    /// feature flags, one query per row), each under one of the request handlers.
    fn fill_to(&mut self, spans: usize) {
        let handlers: Vec<(NodeId, Service)> = self
            .tree
            .nodes()
            .iter()
            .enumerate()
            .filter(|(_, node)| node.category == Category::HttpServer)
            .map(|(id, node)| (id, node.service))
            .collect();
        while self.tree.len() < spans {
            let (handler, service) = handlers[self.rng.random_range(0..handlers.len())];
            match self.rng.random_range(0..3) {
                0 => {
                    let session = self.id();
                    self.redis(handler, service, "GET", &format!("session:{session}"));
                }
                1 => {
                    self.redis(handler, service, "HGET", "feature-flags");
                }
                _ => {
                    self.sql(
                        handler,
                        service,
                        "SELECT",
                        "products",
                        "SELECT sku, name, price_cents FROM products WHERE sku = $1",
                    );
                }
            }
        }
    }
}

/// Extra attributes as requested with `--attributes`, named once.
pub fn extra_attribute_keys(count: u32) -> Vec<String> {
    (0..count).map(|i| format!("loadtest.extra.{i}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    const ALL: [Scenario; 5] = [
        Scenario::ViewProduct,
        Scenario::ViewCart,
        Scenario::AddToCart,
        Scenario::ViewCheckout,
        Scenario::PlaceOrder,
    ];

    fn string_value<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
        let attribute = attributes.iter().find(|kv| kv.key == key)?;
        match attribute.value.as_ref()?.value.as_ref()? {
            Value::StringValue(value) => Some(value),
            _ => None,
        }
    }

    #[test]
    fn every_scenario_has_exactly_the_requested_size() {
        let mut rng = SmallRng::seed_from_u64(1);
        for scenario in ALL {
            for spans in [1, 2, 5, 10, 17, 40, 200, 1_000] {
                let tree = scenario.build(&mut rng, spans);
                assert_eq!(tree.len(), spans, "{scenario:?} with {spans} spans");
            }
        }
    }

    #[test]
    fn declared_sizes_match_what_the_scenarios_build() {
        // Without fill or truncation, a scenario has base + per_item * (items - 1) spans,
        // plus one when its cache lookup misses.
        for scenario in ALL {
            let (base, per_item) = scenario.size();
            for items in [1, 4] {
                let mut rng = SmallRng::seed_from_u64(items as u64);
                let mut shop = ShopTrace {
                    tree: TraceTree::new(),
                    rng: &mut rng,
                };
                match scenario {
                    Scenario::ViewProduct => shop.view_product(items),
                    Scenario::ViewCart => shop.view_cart(items),
                    Scenario::AddToCart => shop.add_to_cart(items),
                    Scenario::ViewCheckout => shop.view_checkout(items),
                    Scenario::PlaceOrder => shop.place_order(items),
                }
                let expected = base + per_item * (items - 1);
                let built = shop.tree.len();
                assert!(
                    built == expected || built == expected + 1,
                    "{scenario:?} with {items} items: {built} spans, declared {expected}"
                );
            }
        }
    }

    #[test]
    fn roots_are_frontend_server_spans_and_calls_pair_client_with_server() {
        let mut rng = SmallRng::seed_from_u64(2);
        for scenario in ALL {
            let tree = scenario.build(&mut rng, 30);
            let nodes = tree.nodes();
            assert_eq!(nodes[0].service, Service::Frontend);
            assert_eq!(nodes[0].kind, SpanKind::Server);
            assert!(string_value(&nodes[0].attributes, "http.route").is_some());
            for node in &nodes[1..] {
                let parent = &nodes[node.parent.expect("only the root has no parent")];
                if node.service != parent.service {
                    assert_eq!(node.kind, SpanKind::Server, "{}", node.name);
                    assert_eq!(parent.kind, SpanKind::Client, "{}", parent.name);
                }
                if node.category == Category::Database {
                    assert_eq!(
                        string_value(&node.attributes, "db.system"),
                        Some("postgresql")
                    );
                    let statement = string_value(&node.attributes, "db.statement").unwrap();
                    assert!(statement.starts_with(node.name.split(' ').next().unwrap()));
                }
                if node.category == Category::Cache {
                    assert_eq!(string_value(&node.attributes, "db.system"), Some("redis"));
                }
            }
        }
    }

    #[test]
    fn place_order_reaches_every_service() {
        let mut rng = SmallRng::seed_from_u64(3);
        let tree = Scenario::PlaceOrder.build(&mut rng, 30);
        for service in Service::ALL {
            assert!(
                tree.nodes().iter().any(|node| node.service == service),
                "{service:?} missing"
            );
        }
        assert!(
            tree.nodes()
                .iter()
                .any(|node| node.name == "charge-payment")
        );
    }

    #[test]
    fn scenarios_are_picked_by_weight() {
        let mut rng = SmallRng::seed_from_u64(4);
        let draws = 20_000;
        let orders = (0..draws)
            .filter(|_| Scenario::pick(&mut rng) == Scenario::PlaceOrder)
            .count();
        let share = orders as f64 / draws as f64;
        assert!((share - 0.10).abs() < 0.015, "place-order share {share}");
    }
}
