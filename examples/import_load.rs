//! Load tool for the bulk customer import: uploads N nested customer records (customer, a
//! billing account, a line, an email contact) to a running `kairos serve` in uploads of
//! `--chunk` records, reads the streamed report and prints the rate. Run it twice to time the
//! re-import (every record found by its external id and updated in place).
//!
//! ```sh
//! KAIROS_AUTH__BOOTSTRAP_ADMIN_KEY=load-key cargo run --release -- serve &
//! cargo run --release --example import_load -- --key load-key --customers 100000
//! ```

use std::time::Instant;

struct Args {
    url: String,
    key: String,
    customers: usize,
    chunk: usize,
}

fn args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:8080".into(),
        key: std::env::var("KAIROS_KEY").unwrap_or_default(),
        customers: 100_000,
        chunk: 20_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = val(),
            "--key" => a.key = val(),
            "--customers" => a.customers = val().parse().expect("--customers N"),
            "--chunk" => a.chunk = val().parse().expect("--chunk N"),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn record(i: usize) -> String {
    let tier = ["standard", "silver", "gold", "platinum"][i % 4];
    serde_json::json!({
        "external_id": format!("LOAD-{i:08}"),
        "name": format!("Load customer {i}"),
        "customer_type": "individual",
        "value_tier": tier,
        "arpu_cents": 2000 + (i % 5000) as i64,
        "accounts": [{"name": "main", "bill_cycle_day": 1 + (i % 28) as i64}],
        "lines": [{"msisdn": format!("86150{i:08}"), "plan": "LOAD_PLAN"}],
        "contacts": [{"medium_type": "email", "email_address": format!("load{i}@example.com")}],
    })
    .to_string()
}

#[tokio::main]
async fn main() {
    let a = args();
    let http = reqwest::Client::new();
    let plan = http
        .post(format!("{}/api/v1/catalog/offerings", a.url))
        .bearer_auth(&a.key)
        .json(&serde_json::json!({"code": "LOAD_PLAN", "name": "Load plan", "offering_type": "plan", "price_cents": 3900}))
        .send()
        .await
        .expect("server reachable");
    assert!(
        plan.status().is_success() || plan.status() == 409,
        "creating the plan: {}",
        plan.status()
    );
    let started = Instant::now();
    let (mut created, mut updated, mut failed) = (0u64, 0u64, 0u64);
    let mut first_failure = None;
    for lo in (0..a.customers).step_by(a.chunk) {
        let hi = (lo + a.chunk).min(a.customers);
        let body: String = (lo..hi).map(|i| record(i) + "\n").collect();
        let resp = http
            .post(format!("{}/api/v1/import/customers", a.url))
            .bearer_auth(&a.key)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .expect("upload sent");
        assert!(resp.status().is_success(), "import: {}", resp.status());
        let text = resp.text().await.expect("report read");
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("report line");
            match v["result"].as_str() {
                Some("created") => created += 1,
                Some("updated") => updated += 1,
                Some("failed") => {
                    failed += 1;
                    first_failure.get_or_insert_with(|| v.to_string());
                }
                _ => {}
            }
        }
        eprintln!(
            "{hi} / {} records, {:.1} s",
            a.customers,
            started.elapsed().as_secs_f64()
        );
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} customer records in {secs:.1} s: {:.0} records/s (created {created}, updated {updated}, failed {failed})",
        a.customers,
        a.customers as f64 / secs
    );
    if let Some(f) = first_failure {
        println!("first failure: {f}");
    }
}
