//! One integration-test binary: every feature suite is a module here, so CI links the app
//! once instead of once per file (linking dominates build time and disk on small machines).

mod common;
mod engine_support;
mod real_engine;

mod agent_desk;
mod architecture;
mod auth_throttle;
mod backtests;
mod browser;
mod captures;
mod crash;
mod crm_agreements;
mod crm_auth;
mod crm_campaigns;
mod crm_customers;
mod crm_import_entities;
mod crm_interactions;
mod crm_operator;
mod crm_opportunities;
mod crm_permissions;
mod crm_products;
mod crm_retention;
mod crm_service_requests;
mod crm_shape;
mod crm_stats;
mod crm_tmf;
mod crm_view;
mod decisioning;
mod delivery;
mod durability;
mod engine_http;
mod group_sms;
mod kafka;
mod ops;
mod outages;
mod portal;
mod replay_cli;
mod route_scope;
mod rule_versions;
mod rules_docs;
mod smpp;
mod sms_dlr;
mod state_stores;
mod templates;
mod tmf_conformance;
