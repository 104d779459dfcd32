// Live updates: the server-sent event stream /api/events says which topic changed; the
// page on screen refreshes when its topic does. While the stream is down the page is
// polled every 2 s instead (EventSource reconnects by itself; polling stops when it does).

const POLL_MS = 2000;
const DEBOUNCE_MS = 150;

let source = null;
let page = null; // {topics: Set, refresh: () => Promise}
let pollTimer = null;
let pending = null;
let indicator = null;

function setState(state) {
  if (!indicator) return;
  indicator.dataset.state = state;
  indicator.textContent = state === "live" ? "● live" : "○ polling";
}

function refreshSoon() {
  if (!page || pending) return;
  const target = page;
  pending = setTimeout(async () => {
    pending = null;
    if (target !== page) return;
    try {
      await target.refresh();
    } catch (err) {
      console.warn("refresh failed", err);
    }
  }, DEBOUNCE_MS);
}

function startPolling() {
  setState("polling");
  if (!pollTimer) pollTimer = setInterval(refreshSoon, POLL_MS);
}

function stopPolling() {
  setState("live");
  if (pollTimer) clearInterval(pollTimer);
  pollTimer = null;
}

export function connect(el) {
  indicator = el;
  if (source) return;
  if (typeof EventSource === "undefined") {
    startPolling();
    return;
  }
  source = new EventSource("/api/events", { withCredentials: true });
  source.addEventListener("open", stopPolling);
  source.addEventListener("error", startPolling);
  source.addEventListener("change", (ev) => {
    let topic = "";
    try {
      topic = JSON.parse(ev.data).topic;
    } catch {
      return;
    }
    if (page && page.topics.has(topic)) refreshSoon();
  });
  startPolling(); // until the stream says it is open
}

export function disconnect() {
  if (source) source.close();
  source = null;
  if (pollTimer) clearInterval(pollTimer);
  pollTimer = null;
}

// The page on screen: refresh() is called on a change of one of its topics.
export function watch(topics, refresh) {
  page = topics.length ? { topics: new Set(topics), refresh } : null;
}
