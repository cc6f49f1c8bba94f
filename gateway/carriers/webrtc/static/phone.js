// The browser phone: one WebRTC call to the gateway (POST /phone/offer), a level meter for
// each side (WebAudio analysers), the transcript from the call's data channel, and the call's
// timeline link when it ends. No framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { pc: null, channel: null, stream: null, audio: null, lines: {}, cut: null };
// Measured by the page for tests and the benchmark (tests/bench/bench_phone.py), in page time
// (ms): when each side's level rose over the threshold after a pause (onsets) and fell under
// it (offsets). A reply's latency as heard here is a bot onset minus the caller's last offset.
window.phoneStats = { botOnsets: [], callerOnsets: [], callerOffsets: [], events: [] };

const params = new URLSearchParams(location.search);
const token = params.get("token");
if (token) {
  // The gateway set a cookie for /phone; keep the token out of the address bar and history.
  history.replaceState(null, "", location.pathname);
}
const authHeaders = token ? { Authorization: `Bearer ${token}` } : {};

function setStatus(text) { $("status").textContent = text; }

async function loadRoutes() {
  const select = $("route");
  try {
    const response = await fetch("/phone/routes", { headers: authHeaders });
    const body = await response.json();
    for (const name of body.routes) {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      if (name === body.default) option.selected = true;
      select.append(option);
    }
    if (!body.routes.length) {
      const option = document.createElement("option");
      option.value = "";
      option.textContent = "(default engine)";
      select.append(option);
    }
  } catch (err) {
    setStatus(`cannot list routes: ${err}`);
  }
}

function say(role, text, final) {
  // One line per turn. The caller's partial text is the whole utterance so far (replaced in
  // place); the bot's partials are its phrases as they are spoken (appended). A final line
  // replaces either. A bot turn cut short gets its final (what the caller heard, ending in
  // "...") after the caller's words: it goes back to the line that was cut.
  if (role === "bot" && final && state.cut) {
    state.cut.textContent = text;
    state.cut.classList.remove("partial");
    state.cut = null;
    return;
  }
  const list = $("transcript");
  let item = state.lines[role];
  if (!item) {
    item = document.createElement("li");
    item.className = role;
    list.append(item);
    state.lines[role] = item;
  }
  if (final || role !== "bot") item.textContent = text;
  else item.textContent = item.textContent ? `${item.textContent} ${text}` : text;
  item.classList.toggle("partial", !final);
  if (final) delete state.lines[role];
  if (final && role === "caller") cut();  // the bot's next words are a new turn
  item.scrollIntoView({ block: "nearest" });
}

function cut() {
  // The bot's open line will not grow any more; its final text may still come.
  if (state.lines.bot) {
    state.cut = state.cut || state.lines.bot;
    delete state.lines.bot;
  }
}

function note(text) {
  const item = document.createElement("li");
  item.className = "note";
  item.textContent = text;
  $("transcript").append(item);
}

function meter(stream, bar, onsets, offsets) {
  // RMS of the stream every animation frame; an onset is the level crossing 0.02 after
  // 300 ms below it (the start of a turn, as the page hears it), an offset its fall below.
  const analyser = state.audio.createAnalyser();
  analyser.fftSize = 1024;
  state.audio.createMediaStreamSource(stream).connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  let quietSince = -Infinity;
  let loud = false;
  const tick = () => {
    if (!state.pc) return;
    analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (const x of data) sum += x * x;
    const rms = Math.sqrt(sum / data.length);
    $(bar).style.width = `${Math.min(100, rms * 400)}%`;
    const now = performance.now();
    if (rms > 0.02) {
      if (!loud && now - quietSince > 300) onsets.push(now);
      loud = true;
    } else {
      if (loud) {
        quietSince = now;
        if (offsets) offsets.push(now);
      }
      loud = false;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

function onMessage(raw) {
  let message;
  try { message = JSON.parse(raw); } catch { return; }
  window.phoneStats.events.push({ at: performance.now(), ...message });
  if (message.type === "transcript") {
    say(message.role, message.text, message.final);
  } else if (message.type === "state" && message.state === "interrupted") {
    cut();
    note("bot interrupted");
  } else if (message.type === "ended") {
    ended(message);
  }
}

function ended(message) {
  const box = $("ended");
  box.hidden = false;
  box.textContent = `Call ended: ${message.reason}. `;
  if (message.timeline) {
    const link = document.createElement("a");
    link.href = message.timeline;
    link.id = "timeline";
    link.textContent = "Open the call's timeline";
    box.append(link);
  }
  teardown("ended");
}

async function call() {
  $("call").disabled = true;
  $("ended").hidden = true;
  $("transcript").replaceChildren();
  state.lines = {};
  state.cut = null;
  setStatus("asking for the microphone...");
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (err) {
    setStatus(`no microphone: ${err.message}`);
    $("call").disabled = false;
    return;
  }
  state.audio = new AudioContext();
  const pc = new RTCPeerConnection();
  state.pc = pc;
  for (const track of state.stream.getAudioTracks()) pc.addTrack(track, state.stream);
  const channel = pc.createDataChannel("events");
  state.channel = channel;
  channel.onmessage = (event) => onMessage(event.data);
  pc.ontrack = (event) => {
    const remote = new MediaStream([event.track]);
    $("remote").srcObject = remote;
    meter(remote, "meter-bot", window.phoneStats.botOnsets);
  };
  pc.onconnectionstatechange = () => {
    setStatus(pc.connectionState);
    if (pc.connectionState === "failed") teardown("connection failed");
  };
  meter(state.stream, "meter-caller", window.phoneStats.callerOnsets,
        window.phoneStats.callerOffsets);
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  setStatus("calling...");
  const response = await fetch("/phone/offer", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...authHeaders },
    body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp, route: $("route").value }),
  });
  const body = await response.json();
  if (!response.ok) {
    setStatus(`refused: ${body.error}`);
    teardown(null);
    return;
  }
  window.phoneStats.callId = body.call_id;
  await pc.setRemoteDescription({ type: "answer", sdp: body.sdp });
  $("hangup").disabled = false;
}

function gathered(pc) {
  // One offer with every candidate in it: the gateway's signalling has no trickle.
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000);
  });
}

function hangup() {
  if (state.channel && state.channel.readyState === "open") {
    state.channel.send(JSON.stringify({ type: "hangup" }));
  }
  setTimeout(() => teardown("hung up"), 1500);  // the ended message normally comes first
}

function teardown(why) {
  if (!state.pc) return;
  state.pc.close();
  state.pc = null;
  for (const track of state.stream ? state.stream.getTracks() : []) track.stop();
  if (state.audio) state.audio.close();
  $("meter-caller").style.width = "0";
  $("meter-bot").style.width = "0";
  $("call").disabled = false;
  $("hangup").disabled = true;
  if (why) setStatus(why);
}

$("call").addEventListener("click", call);
$("hangup").addEventListener("click", hangup);
loadRoutes();
