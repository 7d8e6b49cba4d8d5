//! SMS through an SMSC over SMPP v3.4 (`channels.sms.mode = "smpp"`).
//!
//! One bound session (transceiver by default) kept up in the background: bound at start,
//! kept alive with `enquire_link`, rebound with backoff whenever it drops. While it is down a
//! send fails `Transient` at once, so the deliverer tries again later and nothing is lost.
//!
//! Each message goes as one `submit_sm` per part ([`coding::parts`]: GSM 7-bit or UCS-2,
//! concatenated parts behind an 8-bit-reference header), asking for a delivery receipt. At
//! most `window` submits wait for their `submit_sm_resp` at once. The outcome of a submit:
//! - answered `ESME_ROK`: sent, under the SMSC's `message_id`;
//! - `ESME_RTHROTTLED`: this session's submits pause, the part is submitted again (a few
//!   times), then `Transient`;
//! - another error: `Permanent` for the ones that mean the message itself is wrong (bad
//!   address, bad parameters, rejected), `Transient` for the rest;
//! - written but never answered (the timeout, or the connection dropped meanwhile): the SMSC
//!   may have taken it, so it is `unknown` and never resent blindly.
//!
//! Delivery receipts (`deliver_sm` with esm_class bit 0x04) are answered and reported to
//! [`Receipts`] under the `message_id` they name. Other `deliver_sm`s are subscribers'
//! messages to our sender ([`subscriber_message`]), reported as replies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures::{Stream, StreamExt};
use rusmpp::pdus::{
    BindReceiver, BindTransceiver, BindTransmitter, DeliverSm, DeliverSmResp, SubmitSm,
};
use rusmpp::tlvs::TlvValue;
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{
    DataCoding, EsmClass, InterfaceVersion, Npi, RegisteredDelivery, ServiceType, Ton,
};
use rusmpp::{Command, CommandId, Pdu};
use rusmppc::{Client, ConnectionBuilder, Event};
use tokio::sync::{oneshot, watch, Semaphore};

use super::coding;
use crate::channels::{ChannelError, Delivery, Receipt, Receipts, Reply};
use crate::config::SmppConfig;
use crate::ports::{Recommendation, Status};

/// `command_status` values (SMPP v3.4, 5.1.3).
const ESME_ROK: u32 = 0x00;
const ESME_RTHROTTLED: u32 = 0x58;

/// Submits of one part answered `ESME_RTHROTTLED` that are tried again; the pause before the
/// next doubles from [`THROTTLE_PAUSE`].
const THROTTLE_RETRIES: u32 = 4;
const THROTTLE_PAUSE: Duration = Duration::from_millis(250);

/// How long connecting (TCP) may take before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors that say the message itself is wrong: sending it again cannot help.
fn is_permanent(status: u32) -> bool {
    matches!(
        status,
        0x01 // ESME_RINVMSGLEN
            | 0x06 // ESME_RINVPRTFLG
            | 0x07 // ESME_RINVREGDLVFLG
            | 0x0A // ESME_RINVSRCADR
            | 0x0B // ESME_RINVDSTADR
            | 0x15 // ESME_RINVSERTYP
            | 0x33 // ESME_RINVNUMDESTS
            | 0x43 // ESME_RINVESMCLASS
            | 0x48 // ESME_RINVSRCTON
            | 0x49 // ESME_RINVSRCNPI
            | 0x50 // ESME_RINVDSTTON
            | 0x51 // ESME_RINVDSTNPI
            | 0x61 // ESME_RINVSCHED
            | 0x62 // ESME_RINVEXPIRY
            | 0x65 // ESME_RX_P_APPN: permanent application error
            | 0x66 // ESME_RX_R_APPN: message rejected
            | 0xC0..=0xC4 // optional parameter errors
    )
}

/// The SMPP channel. Dropping it unbinds and stops the session task.
pub struct SmppChannel {
    shared: Arc<Shared>,
    _stop: watch::Sender<()>,
}

struct Shared {
    config: SmppConfig,
    source: COctetString<1, 21>,
    source_ton: Ton,
    source_npi: Npi,
    /// The bound session, none while connecting or down.
    session: ArcSwapOption<Session>,
    window: Semaphore,
    receipts: Receipts,
    /// Concatenation references, one per long message.
    reference: AtomicU8,
    /// Message ids of the parts after the first, whose receipts decide nothing (the first
    /// part's does) and are dropped here instead of being looked for as offers.
    later_parts: LaterParts,
}

/// A bounded set of later parts' message ids, each kept a day at most (receipts come within
/// minutes; a receipt for a forgotten one is looked for and ignored, as before).
#[derive(Default)]
struct LaterParts(std::sync::Mutex<HashMap<String, std::time::Instant>>);

impl LaterParts {
    const MAX: usize = 100_000;
    const KEEP: Duration = Duration::from_secs(86_400);

    fn add(&self, id: String) {
        let mut m = self.0.lock().expect("later parts");
        if m.len() >= Self::MAX {
            m.retain(|_, at| at.elapsed() < Self::KEEP);
            if m.len() >= Self::MAX {
                m.clear();
            }
        }
        m.insert(id, std::time::Instant::now());
    }

    /// True (and forgotten) when `id` is a later part's.
    fn take(&self, id: &str) -> bool {
        self.0.lock().expect("later parts").remove(id).is_some()
    }
}

/// One bound connection.
struct Session {
    client: Client,
    pending: Mutex<Pending>,
    /// Submits wait until then (the SMSC said it was throttling us).
    paused_until: Mutex<Option<tokio::time::Instant>>,
}

/// Submits written and not yet answered, by sequence number. An answer may come before its
/// submitter registers (it is kept as `Arrived`); one that comes after its submitter gave up
/// is dropped (`Abandoned`).
#[derive(Default)]
struct Pending {
    slots: HashMap<u32, Slot>,
    /// The connection is gone: nothing more will be answered.
    closed: bool,
}

enum Slot {
    Waiting(oneshot::Sender<Command>),
    Arrived(Box<Command>),
    Abandoned,
}

/// A part's submit written that never got an answer.
#[derive(Debug, PartialEq)]
enum NoAnswer {
    Timeout,
    ConnectionLost,
}

enum PartError {
    /// Not taken by the SMSC: it did not get it, or refused it.
    NotTaken(ChannelError),
    /// Written, outcome unknown.
    NoAnswer(NoAnswer),
}

impl SmppChannel {
    /// Checks the settings and starts binding in the background (a send before the first
    /// bind fails `Transient`). Needs a Tokio runtime.
    pub fn start(
        config: &SmppConfig,
        sender: &str,
        receipts: Receipts,
    ) -> Result<SmppChannel, String> {
        if config.host.trim().is_empty() {
            return Err("channels.sms.smpp.host is required when mode = \"smpp\"".into());
        }
        if config.system_id.is_empty() || config.system_id.len() > 15 {
            return Err("channels.sms.smpp.system_id: 1 to 15 characters".into());
        }
        if config.password.len() > 8 {
            return Err("channels.sms.smpp.password: at most 8 characters (SMPP v3.4)".into());
        }
        if config.system_type.len() > 12 {
            return Err("channels.sms.smpp.system_type: at most 12 characters".into());
        }
        if !matches!(config.bind.as_str(), "transceiver" | "transmitter") {
            return Err(format!(
                "channels.sms.smpp.bind: {:?} is not \"transceiver\" or \"transmitter\"",
                config.bind
            ));
        }
        if config.window == 0 || config.submit_timeout_secs == 0 {
            return Err("channels.sms.smpp: window and submit_timeout_secs must be > 0".into());
        }
        if sender.is_empty() || sender.len() > 20 || !sender.is_ascii() {
            return Err("channels.sms.sender: 1 to 20 ASCII characters for SMPP".into());
        }
        let source = cstr(sender)?;
        let (source_ton, source_npi) = if sender.bytes().all(|b| b.is_ascii_digit()) {
            (Ton::Unknown, Npi::Isdn)
        } else {
            (Ton::Alphanumeric, Npi::Unknown)
        };
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "the SMPP channel needs a Tokio runtime".to_string())?;
        let shared = Arc::new(Shared {
            config: config.clone(),
            source,
            source_ton,
            source_npi,
            session: ArcSwapOption::empty(),
            window: Semaphore::new(config.window),
            receipts,
            reference: AtomicU8::new(rand::random()),
            later_parts: LaterParts::default(),
        });
        let (stop, stopped) = watch::channel(());
        // A transmitter session carries no receipts or replies: a receiver session beside it
        // does, as an SMSC expects of an ESME bound that way.
        if shared.config.bind == "transmitter" {
            runtime.spawn(supervise(shared.clone(), stopped.clone(), Bind::Receiver));
        }
        runtime.spawn(supervise(shared.clone(), stopped, Bind::Submit));
        Ok(SmppChannel {
            shared,
            _stop: stop,
        })
    }

    /// True while bound.
    pub fn is_bound(&self) -> bool {
        self.shared.session.load().is_some()
    }

    pub async fn send(&self, rec: &Recommendation) -> Result<Delivery, ChannelError> {
        if !self.is_bound() {
            return Err(ChannelError::Transient("SMSC not bound".into()));
        }
        let destination = cstr(&rec.msisdn.to_string()).map_err(ChannelError::Permanent)?;
        let reference = self.shared.reference.fetch_add(1, Ordering::Relaxed);
        let parts = coding::parts(&rec.message, reference).map_err(ChannelError::Permanent)?;
        // Multi-part messages: the offer's provider id is the first part's message_id, so the
        // first part's receipt decides it; receipts for the other parts are dropped as they
        // come (`later_parts`). A part after the first that is not taken leaves a partial message out there:
        // sending it all again would repeat the parts that went, so the offer is `unknown`.
        let mut first_id: Option<String> = None;
        for (i, part) in parts.iter().enumerate() {
            match self.shared.submit(&destination, part).await {
                Ok(id) => {
                    if i == 0 {
                        first_id = Some(id);
                    } else if !id.is_empty() {
                        self.shared.later_parts.add(id);
                    }
                }
                Err(PartError::NotTaken(e)) if i == 0 => return Err(e),
                Err(PartError::NotTaken(e)) => {
                    tracing::warn!(rec = %rec.id, part = i + 1, parts = parts.len(), "SMSC did not take a later part: {e}");
                    return Ok(unknown("partial_submit", None));
                }
                Err(PartError::NoAnswer(why)) => {
                    tracing::warn!(rec = %rec.id, part = i + 1, ?why, "submit_sm written, no submit_sm_resp");
                    let reason = match why {
                        NoAnswer::Timeout => "submit_timeout",
                        NoAnswer::ConnectionLost => "connection_lost",
                    };
                    // The first part's id, when it was taken: its receipt can still decide.
                    return Ok(unknown(reason, first_id));
                }
            }
        }
        match first_id {
            Some(id) if !id.is_empty() => Ok(Delivery::sent_as(id)),
            Some(_) => Ok(Delivery::sent()),
            None => Err(ChannelError::Permanent("empty message".into())),
        }
    }
}

fn unknown(reason: &str, provider_id: Option<String>) -> Delivery {
    Delivery {
        status: Status::Unknown,
        reason: Some(reason.into()),
        provider_id,
    }
}

/// `s` as an SMPP C-octet string, when it fits.
fn cstr<const MIN: usize, const MAX: usize>(s: &str) -> Result<COctetString<MIN, MAX>, String> {
    COctetString::from_string(s.to_string()).map_err(|e| format!("{s:?} does not fit SMPP: {e}"))
}

impl Shared {
    /// Submits one part: its message_id, once taken.
    async fn submit(
        &self,
        destination: &COctetString<1, 21>,
        part: &coding::Part,
    ) -> Result<String, PartError> {
        let not_bound = || PartError::NotTaken(ChannelError::Transient("SMSC not bound".into()));
        let _slot = self.window.acquire().await.map_err(|_| not_bound())?;
        let short_message = OctetString::from_vec(part.short_message.clone())
            .map_err(|e| PartError::NotTaken(ChannelError::Permanent(e.to_string())))?;
        let pdu = SubmitSm::builder()
            .service_type(ServiceType::default())
            .source_addr_ton(self.source_ton)
            .source_addr_npi(self.source_npi)
            .source_addr(self.source.clone())
            .dest_addr_ton(Ton::International)
            .dest_addr_npi(Npi::Isdn)
            .destination_addr(destination.clone())
            .esm_class(EsmClass::from(part.esm_class))
            .registered_delivery(RegisteredDelivery::from(1u8))
            .data_coding(DataCoding::from(part.data_coding))
            .short_message(short_message)
            .build();
        let timeout = Duration::from_secs(self.config.submit_timeout_secs);
        let mut pause = THROTTLE_PAUSE;
        let mut throttled = 0;
        loop {
            let session = self.session.load_full().ok_or_else(not_bound)?;
            session.wait_unpaused().await;
            let seq = session
                .client
                .no_wait()
                .submit_sm(pdu.clone())
                .await
                .map_err(|e| PartError::NotTaken(ChannelError::Transient(e.to_string())))?;
            let resp = session
                .answer(seq, timeout)
                .await
                .map_err(PartError::NoAnswer)?;
            let status = u32::from(resp.status());
            if status == ESME_ROK {
                return match resp.pdu() {
                    Some(Pdu::SubmitSmResp(r)) if !r.message_id().is_empty() => {
                        Ok(r.message_id().as_str().to_string())
                    }
                    // Taken without an id: sent, but no receipt will find it.
                    _ => Ok(String::new()),
                };
            }
            if status == ESME_RTHROTTLED && throttled < THROTTLE_RETRIES {
                throttled += 1;
                tracing::info!(
                    pause_ms = pause.as_millis() as u64,
                    "SMSC throttling; pausing submits"
                );
                session.pause_for(pause);
                pause *= 2;
                continue;
            }
            let e = format!("SMSC answered command_status {status:#04x}");
            return Err(PartError::NotTaken(if is_permanent(status) {
                ChannelError::Permanent(e)
            } else {
                ChannelError::Transient(e)
            }));
        }
    }
}

impl Session {
    fn new(client: Client) -> Session {
        Session {
            client,
            pending: Mutex::default(),
            paused_until: Mutex::default(),
        }
    }

    /// Waits for the answer to the submit written as `seq`.
    async fn answer(&self, seq: u32, timeout: Duration) -> Result<Command, NoAnswer> {
        let rx = {
            let mut p = self.pending.lock().expect("pending submits");
            if let Some(Slot::Arrived(c)) = p.slots.remove(&seq) {
                return Ok(*c);
            }
            if p.closed {
                return Err(NoAnswer::ConnectionLost);
            }
            let (tx, rx) = oneshot::channel();
            p.slots.insert(seq, Slot::Waiting(tx));
            rx
        };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(_)) => Err(NoAnswer::ConnectionLost),
            Err(_) => {
                let mut p = self.pending.lock().expect("pending submits");
                if !p.closed {
                    p.slots.insert(seq, Slot::Abandoned);
                }
                Err(NoAnswer::Timeout)
            }
        }
    }

    /// Hands a `submit_sm_resp` (or `generic_nack`) to its submitter.
    fn answered(&self, cmd: Command) {
        let mut p = self.pending.lock().expect("pending submits");
        if p.closed {
            return;
        }
        let seq = cmd.sequence_number();
        match p.slots.remove(&seq) {
            Some(Slot::Waiting(tx)) => {
                let _ = tx.send(cmd);
            }
            Some(Slot::Abandoned) => {
                tracing::warn!(seq, status = ?cmd.status(), "submit_sm_resp after the submit timed out; the offer stays unknown");
            }
            Some(Slot::Arrived(_)) | None => {
                p.slots.insert(seq, Slot::Arrived(Box::new(cmd)));
            }
        }
    }

    /// The connection is gone: every waiting submit learns it now.
    fn close(&self) {
        let mut p = self.pending.lock().expect("pending submits");
        p.closed = true;
        p.slots.clear();
    }

    fn pause_for(&self, d: Duration) {
        let until = tokio::time::Instant::now() + d;
        let mut p = self.paused_until.lock().expect("pause");
        if p.is_none_or(|t| t < until) {
            *p = Some(until);
        }
    }

    async fn wait_unpaused(&self) {
        let until = *self.paused_until.lock().expect("pause");
        if let Some(t) = until {
            tokio::time::sleep_until(t).await;
        }
    }
}

/// What a session is bound for: submits (as the configured transceiver or transmitter), or
/// only to receive what the SMSC sends back (beside a transmitter).
#[derive(Clone, Copy, PartialEq)]
enum Bind {
    Submit,
    Receiver,
}

/// Keeps a session bound until the channel is dropped.
async fn supervise(shared: Arc<Shared>, mut stop: watch::Receiver<()>, kind: Bind) {
    let first = Duration::from_secs(shared.config.reconnect_secs.max(1));
    let longest = (first * 30).min(Duration::from_secs(300)).max(first);
    let mut backoff = first;
    let addr = format!("{}:{}", shared.config.host, shared.config.port);
    loop {
        let bound = tokio::select! {
            r = bind(&shared, kind) => r,
            _ = stop.changed() => return,
        };
        match bound {
            Ok((session, events)) => {
                backoff = first;
                let as_what = match kind {
                    Bind::Submit => shared.config.bind.as_str(),
                    Bind::Receiver => "receiver",
                };
                tracing::info!(%addr, bind = %as_what, "bound to the SMSC");
                if kind == Bind::Submit {
                    shared.session.store(Some(session.clone()));
                }
                let stopping = tokio::select! {
                    _ = run(&shared, &session, events) => false,
                    _ = stop.changed() => true,
                };
                if kind == Bind::Submit {
                    shared.session.store(None);
                }
                session.close();
                if stopping {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), session.client.unbind()).await;
                    let _ = session.client.close().await;
                    return;
                }
                let _ = session.client.close().await;
                tracing::warn!(%addr, "SMSC connection lost; reconnecting");
            }
            Err(e) => tracing::warn!(%addr, retry_in = ?backoff, "SMSC bind failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(longest);
    }
}

/// Connects and binds.
async fn bind(
    shared: &Shared,
    kind: Bind,
) -> Result<(Arc<Session>, impl Stream<Item = Event> + Unpin + 'static), String> {
    let c = &shared.config;
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((c.host.as_str(), c.port)),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let builder = ConnectionBuilder::new()
        // The session is v3.4; rusmpp encodes v5.0, whose PDUs these are a superset of.
        .disable_interface_version_check()
        .response_timeout(Duration::from_secs(c.submit_timeout_secs));
    let builder = if c.enquire_link_secs == 0 {
        builder.no_enquire_link_interval()
    } else {
        builder.enquire_link_interval(Duration::from_secs(c.enquire_link_secs))
    };
    let (client, events) = builder.connected(stream);
    let system_id = cstr(&c.system_id)?;
    let password = cstr(&c.password)?;
    let system_type = cstr(&c.system_type)?;
    let bound = if kind == Bind::Receiver {
        let pdu = BindReceiver::builder()
            .system_id(system_id)
            .password(password)
            .system_type(system_type)
            .interface_version(InterfaceVersion::Smpp3_4)
            .build();
        client.bind_receiver(pdu).await.map(|_| ())
    } else if c.bind == "transmitter" {
        let pdu = BindTransmitter::builder()
            .system_id(system_id)
            .password(password)
            .system_type(system_type)
            .interface_version(InterfaceVersion::Smpp3_4)
            .build();
        client.bind_transmitter(pdu).await.map(|_| ())
    } else {
        let pdu = BindTransceiver::builder()
            .system_id(system_id)
            .password(password)
            .system_type(system_type)
            .interface_version(InterfaceVersion::Smpp3_4)
            .build();
        client.bind_transceiver(pdu).await.map(|_| ())
    };
    if let Err(e) = bound {
        let _ = client.close().await;
        return Err(match e {
            rusmppc::error::Error::UnexpectedResponse { response } => {
                format!("refused with command_status {:?}", response.status())
            }
            e => e.to_string(),
        });
    }
    Ok((Arc::new(Session::new(client)), events))
}

/// Serves one session's incoming commands until the connection ends.
async fn run(shared: &Shared, session: &Session, mut events: impl Stream<Item = Event> + Unpin) {
    while let Some(event) = events.next().await {
        match event {
            Event::Incoming(cmd) => match cmd.id() {
                CommandId::SubmitSmResp | CommandId::GenericNack => session.answered(cmd),
                CommandId::DeliverSm => {
                    let seq = cmd.sequence_number();
                    if let Err(e) = session
                        .client
                        .deliver_sm_resp(seq, DeliverSmResp::default())
                        .await
                    {
                        tracing::warn!(seq, "deliver_sm_resp not sent: {e}");
                    }
                    if let Some(Pdu::DeliverSm(d)) = cmd.pdu() {
                        delivered(shared, d);
                    }
                }
                CommandId::Unbind => {
                    tracing::warn!("the SMSC unbinds this session");
                    let _ = session.client.unbind_resp(cmd.sequence_number()).await;
                    return;
                }
                other => tracing::debug!(?other, "SMPP command ignored"),
            },
            Event::Error(e) => {
                use rusmppc::error::Error as E;
                tracing::warn!("SMPP session: {e}");
                if matches!(
                    e,
                    E::ConnectionClosedByPeer
                        | E::ConnectionClosed
                        | E::Io(_)
                        | E::EnquireLinkTimeout { .. }
                ) {
                    return;
                }
            }
        }
    }
}

/// A `deliver_sm`: a delivery receipt, or a subscriber writing to us.
fn delivered(shared: &Shared, d: &DeliverSm) {
    let esm = u8::from(d.esm_class);
    let bytes = d.short_message().as_ref();
    let text = if u8::from(d.data_coding) == coding::DCS_UCS2 {
        coding::ucs2_decode(bytes)
    } else if esm & 0x04 != 0 {
        // Receipt texts are plain ASCII whatever the coding says.
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        coding::gsm7_decode(bytes)
    };
    if esm & 0x3C == 0x04 {
        let receipted_id = d.tlvs().iter().find_map(|t| match t.value() {
            Some(TlvValue::ReceiptedMessageId(id)) => Some(id.as_str().to_string()),
            _ => None,
        });
        match parse_receipt(&text, receipted_id.as_deref()) {
            Some(r) if shared.later_parts.take(&r.provider_id) => {
                tracing::debug!(provider_id = %r.provider_id, "receipt for a later part; the first part's decides");
            }
            // One that arrives before the send's outcome is stored waits in the deliverer.
            Some(r) => shared.receipts.report(r),
            None => tracing::debug!(%text, "delivery receipt with no final state; ignored"),
        }
    } else {
        subscriber_message(
            &shared.receipts,
            d.source_addr.as_str(),
            d.destination_addr.as_str(),
            &text,
        );
    }
}

/// A subscriber's message to our sender (a reply such as "Y" to an offer): handed on as a
/// reply, which answers the newest live offer to that number (`channels::replies`).
pub fn subscriber_message(receipts: &Receipts, from: &str, to: &str, text: &str) {
    tracing::info!(%from, %to, %text, "SMS from a subscriber");
    match crate::event::Msisdn::parse(from) {
        Ok(from) => receipts.reply(Reply {
            channel: "sms".into(),
            from,
            text: text.to_string(),
        }),
        Err(e) => tracing::warn!(%from, "SMS from a number we cannot read ({e}); ignored"),
    }
}

/// The receipt a delivery receipt's text says (SMPP v3.4 Appendix B:
/// `id:IIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD
/// err:E text:...`), keyed by `id` (else the `receipted_message_id` parameter). `None` for
/// an intermediate state (`ENROUTE`, `ACCEPTD`) or a text that is no receipt.
pub fn parse_receipt(text: &str, receipted_message_id: Option<&str>) -> Option<Receipt> {
    let field = |name: &str| -> Option<&str> {
        // Fields are separated by spaces; `text:` runs to the end and is never looked into.
        let head = match text.to_ascii_lowercase().find(" text:") {
            Some(i) => &text[..i],
            None => text,
        };
        let lower = head.to_ascii_lowercase();
        let key = format!("{name}:");
        let at = lower
            .match_indices(&key)
            .find(|(i, _)| *i == 0 || lower.as_bytes()[i - 1] == b' ')?
            .0;
        let rest = &head[at + key.len()..];
        Some(rest.split_whitespace().next().unwrap_or(""))
    };
    let id = field("id")
        .filter(|s| !s.is_empty())
        .or(receipted_message_id)?
        .to_string();
    let stat = field("stat")?.to_ascii_uppercase();
    let (status, reason) = match stat.as_str() {
        "DELIVRD" => (Status::Delivered, None),
        "EXPIRED" => (Status::Expired, Some("expired")),
        "UNDELIV" => (Status::Failed, Some("undelivered")),
        "REJECTD" => (Status::Failed, Some("rejected")),
        "DELETED" => (Status::Failed, Some("deleted")),
        "UNKNOWN" => (Status::Failed, Some("unknown")),
        _ => return None,
    };
    if status == Status::Failed {
        tracing::info!(%id, %stat, err = field("err").unwrap_or(""), "SMSC could not deliver");
    }
    Some(Receipt {
        channel: "sms".into(),
        provider_id: id,
        status,
        reason: reason.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(status: Status, reason: Option<&str>, id: &str) -> Option<Receipt> {
        Some(Receipt {
            channel: "sms".into(),
            provider_id: id.into(),
            status,
            reason: reason.map(str::to_string),
        })
    }

    #[test]
    fn receipts_map_the_final_states() {
        let text = |stat: &str| {
            format!("id:a1b2c3 sub:001 dlvrd:001 submit date:2612021230 done date:2612021231 stat:{stat} err:000 text:Your balance")
        };
        assert_eq!(
            parse_receipt(&text("DELIVRD"), None),
            receipt(Status::Delivered, None, "a1b2c3")
        );
        assert_eq!(
            parse_receipt(&text("EXPIRED"), None),
            receipt(Status::Expired, Some("expired"), "a1b2c3")
        );
        assert_eq!(
            parse_receipt(&text("UNDELIV"), None),
            receipt(Status::Failed, Some("undelivered"), "a1b2c3")
        );
        assert_eq!(
            parse_receipt(&text("REJECTD"), None),
            receipt(Status::Failed, Some("rejected"), "a1b2c3")
        );
        assert_eq!(
            parse_receipt(&text("DELETED"), None),
            receipt(Status::Failed, Some("deleted"), "a1b2c3")
        );
        assert_eq!(
            parse_receipt(&text("UNKNOWN"), None),
            receipt(Status::Failed, Some("unknown"), "a1b2c3")
        );
        // Not final yet.
        assert_eq!(parse_receipt(&text("ENROUTE"), None), None);
        assert_eq!(parse_receipt(&text("ACCEPTD"), None), None);
    }

    #[test]
    fn receipt_fields_are_read_whole_and_in_any_case() {
        // "id:" inside "submit date:" or in the message text must not be taken for the id.
        let t = "ID:77 sub:001 dlvrd:000 submit date:2612021230 done date:2612021231 stat:undeliv err:012 text:id:99 stat:DELIVRD";
        assert_eq!(
            parse_receipt(t, None),
            receipt(Status::Failed, Some("undelivered"), "77")
        );
        // No id in the text: the receipted_message_id parameter.
        assert_eq!(
            parse_receipt("sub:001 dlvrd:001 stat:DELIVRD err:000", Some("m-5")),
            receipt(Status::Delivered, None, "m-5")
        );
        // Not a receipt at all.
        assert_eq!(parse_receipt("YES", None), None);
        assert_eq!(parse_receipt("id:5 hello", None), None);
    }

    #[test]
    fn permanent_errors_are_the_ones_about_the_message() {
        assert!(is_permanent(0x0B), "invalid destination address");
        assert!(is_permanent(0x0A), "invalid source address");
        assert!(is_permanent(0x66), "rejected");
        for transient in [0x08, 0x14, 0x58, 0x64, 0xFF] {
            assert!(!is_permanent(transient), "{transient:#x}");
        }
    }

    #[tokio::test]
    async fn settings_are_checked_before_anything_connects() {
        let (receipts, _rx) = Receipts::new();
        let ok = SmppConfig {
            host: "127.0.0.1".into(),
            system_id: "kairos".into(),
            ..SmppConfig::default()
        };
        assert!(SmppChannel::start(&ok, "10086", receipts.clone()).is_ok());
        let bad = |f: fn(&mut SmppConfig)| {
            let mut c = ok.clone();
            f(&mut c);
            SmppChannel::start(&c, "10086", receipts.clone())
                .err()
                .unwrap()
        };
        assert!(bad(|c| c.host.clear()).contains("host"));
        assert!(bad(|c| c.bind = "receiver".into()).contains("bind"));
        assert!(bad(|c| c.password = "longer-than-8".into()).contains("password"));
        assert!(bad(|c| c.window = 0).contains("window"));
        assert!(SmppChannel::start(&ok, "", receipts.clone()).is_err());
    }

    /// A later part's receipt is recognised once and dropped; the first part's and unknown
    /// ids are not; the set stays bounded.
    #[test]
    fn later_parts_are_recognised_once_and_bounded() {
        let parts = LaterParts::default();
        parts.add("p2".into());
        assert!(parts.take("p2"));
        assert!(!parts.take("p2"), "forgotten once taken");
        assert!(!parts.take("p1"));
        for i in 0..LaterParts::MAX + 10 {
            parts.add(format!("x{i}"));
        }
        assert!(parts.0.lock().unwrap().len() <= LaterParts::MAX);
    }
}
