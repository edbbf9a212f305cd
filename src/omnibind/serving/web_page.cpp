// The single-page UI served at GET /: plain HTML/JS/CSS, no build step. Text or dropped files become
// query items (each with a weight; "−" or a negative weight subtracts: "this picture + this sound −
// 'indoors'"); the composed query is searched (results of every modality with previews: image
// thumbnails, audio players, point clouds drawn on a canvas, drag to rotate) or located in a picture
// (uploaded, or an image result's "locate here"): POST /v1/locate's heatmap is drawn over the picture
// with the best boxes.
#include "omnibind/serving/server.h"

namespace omnibind::serving {

const std::string& web_page() {
  static const std::string page = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>OmniBind search</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#222}
header{background:#223;color:#fff;padding:10px 16px;display:flex;gap:16px;align-items:center}
header h1{font-size:18px;margin:0} #status{font-size:13px;opacity:.8}
main{padding:16px;max-width:1200px;margin:auto}
#drop{border:2px dashed #99a;border-radius:8px;padding:14px;background:#fff;margin-bottom:10px}
#drop.over{background:#eef}
.row{display:flex;gap:8px;flex-wrap:wrap;align-items:center;margin:6px 0}
input[type=text]{flex:1;min-width:240px;padding:6px}
#items .qi{display:flex;gap:8px;align-items:center;background:#fff;border:1px solid #ccd;border-radius:6px;padding:4px 8px;margin:3px 0}
#items .qi input{width:70px}
button{padding:6px 12px;cursor:pointer}
#results{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:10px;margin-top:12px}
.card{background:#fff;border:1px solid #ccd;border-radius:8px;padding:8px;font-size:13px;overflow:hidden}
.card img{max-width:100%;max-height:160px;display:block;margin:auto}
.card canvas{width:100%;height:160px;background:#111;border-radius:4px;cursor:grab}
.card audio{width:100%}
.score{font-weight:bold;color:#236} .mod{display:inline-block;background:#dde;border-radius:4px;padding:0 5px}
.err{color:#a00;white-space:pre-wrap} .src{word-break:break-all;color:#555}
#locPanel{border:1px solid #ccd;border-radius:8px;padding:10px 14px;background:#fff;margin:10px 0}
#locPanel h2{font-size:16px;margin:2px 0 6px}
#locView{position:relative;display:inline-block;margin-top:8px;line-height:0}
#locImg{max-width:min(100%,720px);height:auto;display:block}
#locCanvas{position:absolute;left:0;top:0;pointer-events:none}
#locBoxes{font-size:13px} #locBoxes li{margin:2px 0}
#formula{font-size:13px;color:#335;margin:4px 0} .qi .sign{width:28px;font-weight:bold}
.locHere{margin-left:4px}
</style></head><body>
<header><h1>OmniBind any-to-any search</h1><span id="status">connecting...</span></header>
<main>
<div id="drop">
 <div class="row"><input id="text" type="text" placeholder="type text (Enter = search), or drop an audio file, image or 3D file here">
  <button id="addText" title="add this text to the query">+ text</button>
  <button id="subText" title="subtract this text from the query">&minus; text</button>
  <label>file <input id="file" type="file"></label></div>
 <div id="items"></div>
 <div id="formula"></div>
 <div class="row">
  <label>k <input id="k" type="number" value="12" min="1" max="1000" style="width:60px"></label>
  <label>modality <select id="modality"><option value="">any</option><option>audio</option><option>image</option>
   <option>text</option><option>point</option></select></label>
  <label>where <input id="where" type="text" placeholder="key=value" style="min-width:120px;flex:0"></label>
  <label>API key <input id="apikey" type="password" style="width:120px"></label>
  <button id="search">search</button> <button id="clear">clear</button>
 </div>
 <div id="error" class="err"></div>
</div>
<div id="locPanel">
 <h2>Locate the query in a picture</h2>
 <div class="row">
  <label>picture <input id="locFile" type="file" accept="image/*"></label>
  <span id="locName">no picture yet: upload one, or press "locate here" on an image result</span>
 </div>
 <div class="row">
  <label>boxes <input id="locK" type="number" value="3" min="1" max="20" style="width:50px"></label>
  <label>heatmap <input id="locAlpha" type="range" min="0" max="1" step="0.05" value="0.5"></label>
  <button id="locate">locate</button>
 </div>
 <div id="locError" class="err"></div>
 <div id="locSummary"></div>
 <div id="locView"><img id="locImg" alt=""><canvas id="locCanvas"></canvas></div>
 <ol id="locBoxes"></ol>
</div>
<div id="summary"></div>
<div id="results"></div>
</main>
<script>
'use strict';
const $ = id => document.getElementById(id);
let items = [];  // {label, item} where item is a /v1/search query item (weight inside)
$('apikey').value = localStorage.getItem('omnibind_key') || '';
function headers() {
  const h = {'Content-Type': 'application/json'};
  const k = $('apikey').value.trim();
  if (k) { h['Authorization'] = 'Bearer ' + k; localStorage.setItem('omnibind_key', k); }
  return h;
}
function kindOf(name) {
  const ext = name.toLowerCase().split('.').pop();
  if (['wav','flac','ogg','mp3'].includes(ext)) return 'audio';
  if (['jpg','jpeg','png','webp','bmp','gif'].includes(ext)) return 'image';
  if (['ply','obj','off','pcd','npy','xyz','txt'].includes(ext)) return 'point';
  return null;
}
function renderItems() {
  const box = $('items'); box.innerHTML = '';
  items.forEach((q, i) => {
    const d = document.createElement('div'); d.className = 'qi';
    const sg = document.createElement('button'); sg.className = 'sign';
    sg.textContent = q.item.weight < 0 ? '\u2212' : '+'; sg.title = 'add / subtract this item';
    sg.onclick = () => { q.item.weight = -q.item.weight; renderItems(); };
    const w = document.createElement('input'); w.type = 'number'; w.step = '0.1'; w.value = Math.abs(q.item.weight);
    w.title = 'weight';
    w.onchange = () => { const v = Math.abs(parseFloat(w.value) || 0); q.item.weight = q.item.weight < 0 ? -v : v; renderFormula(); };
    const t = document.createElement('span'); t.className = 'label'; t.textContent = q.label;
    const x = document.createElement('button'); x.textContent = 'x'; x.onclick = () => { items.splice(i, 1); renderItems(); };
    d.append(sg, 'weight', w, t, x); box.append(d);
  });
  renderFormula();
}
// The composed query in words: "+1 image: a.png + 1 audio: b.wav − 1 text: indoors".
function renderFormula() {
  $('formula').textContent = items.length ? 'query = normalise(' + items.map((q, i) => {
    const w = q.item.weight, sign = w < 0 ? '\u2212 ' : (i ? '+ ' : '');
    return sign + (Math.abs(w) === 1 ? '' : Math.abs(w) + ' \u00d7 ') + q.label;
  }).join(' ') + ')' : '';
}
function addText(t, sign) { if (!t) return; items.push({label: 'text: ' + t, item: {type: 'text', text: t, weight: sign || 1}}); renderItems(); }
function addFile(f) {
  const kind = kindOf(f.name);
  if (!kind) { $('error').textContent = f.name + ': unknown file type (audio, image or 3D file expected)'; return; }
  const r = new FileReader();
  r.onload = () => {
    const b64 = r.result.split(',')[1] || '';
    items.push({label: kind + ': ' + f.name, item: {type: kind, data: b64, name: f.name, weight: 1}});
    renderItems(); search();
  };
  r.readAsDataURL(f);
}
function addId(id, label) { items = [{label: 'item ' + id + (label ? ' (' + label + ')' : ''), item: {id: id, weight: 1}}]; renderItems(); search(); }
async function search() {
  $('error').textContent = '';
  const t = $('text').value.trim();
  if (t) { addText(t); $('text').value = ''; }
  if (!items.length) { $('error').textContent = 'add some text or a file first'; return; }
  const body = {query: items.map(q => q.item), k: parseInt($('k').value) || 12};
  if ($('modality').value) body.modality = $('modality').value;
  const w = $('where').value.trim();
  if (w) { const i = w.indexOf('='); if (i > 0) body.where = {[w.slice(0, i)]: w.slice(i + 1)}; }
  let res, j;
  try {
    res = await fetch('/v1/search', {method: 'POST', headers: headers(), body: JSON.stringify(body)});
    j = await res.json();
  } catch (e) { $('error').textContent = 'request failed: ' + e; return; }
  if (!res.ok) { $('error').textContent = (j.error && j.error.message) || ('HTTP ' + res.status); return; }
  $('summary').textContent = j.results.length + ' results in ' + j.took_ms.toFixed(1) + ' ms';
  const box = $('results'); box.innerHTML = '';
  j.results.forEach((r, i) => box.append(card(r, i + 1)));
}
function card(r, rank) {
  const c = document.createElement('div'); c.className = 'card result';
  c.dataset.id = r.id;
  const head = document.createElement('div');
  head.innerHTML = '#' + rank + ' <span class="score">' + r.score.toFixed(4) + '</span> <span class="mod"></span> id ' + r.id;
  head.querySelector('.mod').textContent = r.modality;
  c.append(head);
  if (r.media_url && r.modality === 'image') { const im = new Image(); im.src = r.media_url; im.loading = 'lazy'; c.append(im); }
  if (r.modality === 'image') {
    const lh = document.createElement('button'); lh.className = 'locHere'; lh.textContent = 'locate here';
    lh.title = 'locate the query in this picture';
    lh.onclick = () => setPicture({id: r.id}, 'item ' + r.id + (r.source ? ' (' + r.source.split('/').pop() + ')' : ''), r.media_url);
    c.append(lh);
  }
  if (r.media_url && r.modality === 'audio') { const a = document.createElement('audio'); a.controls = true; a.preload = 'none'; a.src = r.media_url; c.append(a); }
  if (r.media_url && r.modality === 'point') c.append(pointView(r.media_url));
  const src = document.createElement('div'); src.className = 'src'; src.textContent = r.source || ''; c.append(src);
  if (r.labels && r.labels.length) { const l = document.createElement('div'); l.className = 'labels'; l.textContent = 'labels: ' + r.labels.join(', '); c.append(l); }
  const more = document.createElement('button'); more.textContent = 'more like this';
  more.onclick = () => addId(r.id, (r.labels || [])[0]); c.append(more);
  return c;
}
// Point clouds: .npy float32/float64 [N,>=3], or ASCII xyz/pcd/ply/off rows; drawn as a rotating projection.
function parsePoints(buf, url) {
  const u8 = new Uint8Array(buf);
  if (u8[0] === 0x93 && String.fromCharCode(...u8.slice(1, 6)) === 'NUMPY') {
    const hlen = u8[8] | (u8[9] << 8), header = String.fromCharCode(...u8.slice(10, 10 + hlen));
    const shape = (header.match(/\((\d+),\s*(\d+)/) || []).slice(1).map(Number);
    const f8 = header.includes('<f8'), off = 10 + hlen;
    const arr = f8 ? new Float64Array(buf.slice(off)) : new Float32Array(buf.slice(off));
    const cols = shape[1] || 3, pts = [];
    for (let i = 0; i + 2 < arr.length && pts.length < 20000; i += cols) pts.push([arr[i], arr[i + 1], arr[i + 2]]);
    return pts;
  }
  const text = new TextDecoder().decode(u8.slice(0, 4 << 20)), pts = [];
  for (const line of text.split('\n')) {
    const p = line.trim().split(/\s+/).map(Number);
    if (p.length >= 3 && p.slice(0, 3).every(Number.isFinite) && pts.length < 20000) pts.push(p.slice(0, 3));
  }
  return pts;
}
function pointView(url) {
  const cv = document.createElement('canvas'); cv.width = 300; cv.height = 160;
  let pts = [], yaw = 0.6, pitch = 0.3, drag = null;
  fetch(url, {headers: headers()}).then(r => r.arrayBuffer()).then(b => { pts = parsePoints(b, url); draw(); }).catch(() => {});
  function draw() {
    const g = cv.getContext('2d'); g.fillStyle = '#111'; g.fillRect(0, 0, cv.width, cv.height);
    if (!pts.length) return;
    let c = [0, 0, 0], s = 0;
    pts.forEach(p => { c[0] += p[0]; c[1] += p[1]; c[2] += p[2]; }); c = c.map(v => v / pts.length);
    pts.forEach(p => { s = Math.max(s, Math.hypot(p[0] - c[0], p[1] - c[1], p[2] - c[2])); });
    const cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch), sc = 70 / (s || 1);
    pts.forEach(p => {
      const x = p[0] - c[0], y = p[1] - c[1], z = p[2] - c[2];
      const X = cy * x + sy * z, Z = -sy * x + cy * z, Y = cp * y - sp * Z, D = sp * y + cp * Z;
      const shade = Math.max(60, Math.min(255, 160 + D * sc));
      g.fillStyle = 'rgb(' + shade + ',' + shade + ',255)';
      g.fillRect(cv.width / 2 + X * sc, cv.height / 2 - Y * sc, 1.5, 1.5);
    });
  }
  cv.onmousedown = e => { drag = [e.clientX, e.clientY]; };
  window.addEventListener('mouseup', () => { drag = null; });
  cv.onmousemove = e => { if (!drag) return; yaw += (e.clientX - drag[0]) / 100; pitch += (e.clientY - drag[1]) / 100; drag = [e.clientX, e.clientY]; draw(); };
  return cv;
}
$('text').addEventListener('keydown', e => { if (e.key === 'Enter') search(); });
$('addText').onclick = () => { addText($('text').value.trim()); $('text').value = ''; };
$('subText').onclick = () => { addText($('text').value.trim(), -1); $('text').value = ''; };
$('locate').onclick = locate;
$('locAlpha').oninput = () => { if (lastLocate) drawLocate(lastLocate); };
$('locFile').onchange = e => {
  const f = e.target.files[0]; if (!f) return;
  const r = new FileReader();
  r.onload = () => setPicture({type: 'image', data: r.result.split(',')[1] || '', name: f.name}, 'uploaded: ' + f.name, r.result);
  r.readAsDataURL(f);
};
window.addEventListener('resize', () => { if (lastLocate) drawLocate(lastLocate); });
$('locImg').addEventListener('load', () => {  // small pictures are shown enlarged (whole pixels)
  const img = $('locImg'), f = Math.max(1, Math.min(4, Math.floor(480 / Math.max(1, img.naturalWidth))));
  img.style.width = (img.naturalWidth * f) + 'px';
  img.style.imageRendering = f > 1 ? 'pixelated' : 'auto';
  if (lastLocate) drawLocate(lastLocate);
});
$('file').onchange = e => { if (e.target.files[0]) addFile(e.target.files[0]); };
$('search').onclick = search;
$('clear').onclick = () => { items = []; renderItems(); $('results').innerHTML = ''; $('summary').textContent = ''; };
// ---- locate: the picture, POST /v1/locate, the heatmap and boxes over the picture ----
let picture = null, lastLocate = null;  // picture: {item (the request's "image"), label}
function setPicture(item, label, src) {
  picture = {item: item, label: label};
  $('locName').textContent = label;
  lastLocate = null; $('locBoxes').innerHTML = ''; $('locSummary').textContent = ''; $('locError').textContent = '';
  const cv = $('locCanvas'); cv.getContext('2d').clearRect(0, 0, cv.width, cv.height);
  if (src) $('locImg').src = src;
  else { $('locImg').removeAttribute('src'); }
  $('locPanel').scrollIntoView({block: 'nearest'});
}
async function locate() {
  $('locError').textContent = '';
  const t = $('text').value.trim();
  if (t) { addText(t); $('text').value = ''; }
  if (!picture) { $('locError').textContent = 'choose a picture first (upload one, or "locate here" on an image result)'; return; }
  if (!items.length) { $('locError').textContent = 'build a query first: type text, or add a sound, a point cloud or a picture'; return; }
  const body = {image: picture.item, query: items.map(q => q.item), k: parseInt($('locK').value) || 3};
  $('locSummary').textContent = 'locating...';
  let res, j;
  try {
    res = await fetch('/v1/locate', {method: 'POST', headers: headers(), body: JSON.stringify(body)});
    j = await res.json();
  } catch (e) { $('locError').textContent = 'request failed: ' + e; $('locSummary').textContent = ''; return; }
  if (!res.ok) {
    $('locError').textContent = ((j.error && j.error.message) || ('HTTP ' + res.status)) + (j.error && j.error.field ? ' [' + j.error.field + ']' : '');
    $('locSummary').textContent = ''; return;
  }
  lastLocate = j;
  $('locSummary').textContent = j.regions + ' regions' + (j.cached ? ' (cached)' : '') + ', ' + j.boxes.length + ' boxes in ' +
    j.took_ms.toFixed(1) + ' ms; heat ' + j.heat.min.toFixed(3) + '..' + j.heat.max.toFixed(3) + ' at (' +
    Math.round(j.peak.x) + ', ' + Math.round(j.peak.y) + ')';
  const list = $('locBoxes'); list.innerHTML = '';
  j.boxes.forEach((b, i) => {
    const li = document.createElement('li'); li.className = 'box';
    Object.assign(li.dataset, {x: b.x, y: b.y, w: b.w, h: b.h, score: b.score});
    li.textContent = 'score ' + b.score.toFixed(4) + ' at x ' + b.x + ', y ' + b.y + ', ' + b.w + '\u00d7' + b.h;
    list.append(li);
  });
  const img = $('locImg');
  if (img.complete && img.naturalWidth) drawLocate(j); else img.onload = () => drawLocate(j);
}
function ramp(t) {  // dark blue -> red -> yellow
  t = Math.max(0, Math.min(1, t));
  if (t < 0.5) { const u = t / 0.5; return [Math.round(20 + 210 * u), 20, Math.round(110 - 90 * u)]; }
  const u = (t - 0.5) / 0.5; return [230 + Math.round(25 * u), Math.round(20 + 215 * u), 20];
}
function drawLocate(j) {
  const img = $('locImg'), cv = $('locCanvas');
  const W = img.clientWidth || img.naturalWidth, H = img.clientHeight || img.naturalHeight;
  cv.width = W; cv.height = H; cv.style.width = W + 'px'; cv.style.height = H + 'px';
  const g = cv.getContext('2d'); g.clearRect(0, 0, W, H);
  const hw = j.heat.width, hh = j.heat.height, span = (j.heat.max - j.heat.min) || 1;
  const cells = document.createElement('canvas'); cells.width = hw; cells.height = hh;
  const cg = cells.getContext('2d'), data = cg.createImageData(hw, hh);
  for (let y = 0; y < hh; ++y) for (let x = 0; x < hw; ++x) {
    const c = ramp((j.heat.values[y][x] - j.heat.min) / span), o = 4 * (y * hw + x);
    data.data[o] = c[0]; data.data[o + 1] = c[1]; data.data[o + 2] = c[2]; data.data[o + 3] = 255;
  }
  cg.putImageData(data, 0, 0);
  g.globalAlpha = parseFloat($('locAlpha').value); g.imageSmoothingEnabled = true;
  g.drawImage(cells, 0, 0, W, H); g.globalAlpha = 1;
  const sx = W / j.image.width, sy = H / j.image.height;
  j.boxes.forEach((b, i) => {
    g.strokeStyle = i ? '#fff' : '#0f0'; g.lineWidth = i ? 1.5 : 3;
    g.strokeRect(b.x * sx, b.y * sy, b.w * sx, b.h * sy);
    const label = '#' + (i + 1) + ' ' + b.score.toFixed(3);
    g.font = '12px sans-serif';
    g.fillStyle = 'rgba(0,0,0,0.6)'; g.fillRect(b.x * sx, b.y * sy, g.measureText(label).width + 6, 16);
    g.fillStyle = i ? '#fff' : '#0f0'; g.fillText(label, b.x * sx + 3, b.y * sy + 12);
  });
  g.strokeStyle = '#fff'; g.beginPath(); g.arc(j.peak.x * sx, j.peak.y * sy, 5, 0, 2 * Math.PI); g.stroke();
  cv.dataset.drawn = '1';
}
const drop = $('drop');
drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', e => { e.preventDefault(); drop.classList.remove('over'); [...e.dataTransfer.files].forEach(addFile); });
fetch('/health').then(r => r.json()).then(h => {
  $('status').textContent = h.items + ' items, dim ' + h.dim + (h.model ? ', model ' + h.model.name : ', no model (search by id only)');
  if (!h.model || !h.model.modalities.includes('image')) $('locName').textContent = 'locating needs a model bundle with an image pathway';
}).catch(() => { $('status').textContent = 'server unreachable'; });
</script></body></html>
)HTML";
  return page;
}

}  // namespace omnibind::serving
