// The single-page UI served at GET /: plain HTML/JS/CSS, no build step. Text or dropped files become
// query items (each with a weight; negative subtracts); results of every modality are shown with
// previews: image thumbnails, audio players, and point clouds drawn on a canvas (drag to rotate).
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
</style></head><body>
<header><h1>OmniBind any-to-any search</h1><span id="status">connecting...</span></header>
<main>
<div id="drop">
 <div class="row"><input id="text" type="text" placeholder="type text (Enter = search), or drop an audio file, image or 3D file here">
  <button id="addText">add text</button>
  <label>file <input id="file" type="file"></label></div>
 <div id="items"></div>
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
    const w = document.createElement('input'); w.type = 'number'; w.step = '0.1'; w.value = q.item.weight;
    w.title = 'weight (negative = subtract)';
    w.onchange = () => { q.item.weight = parseFloat(w.value) || 0; };
    const t = document.createElement('span'); t.textContent = q.label;
    const x = document.createElement('button'); x.textContent = 'x'; x.onclick = () => { items.splice(i, 1); renderItems(); };
    d.append('weight', w, t, x); box.append(d);
  });
}
function addText(t) { if (!t) return; items.push({label: 'text: ' + t, item: {type: 'text', text: t, weight: 1}}); renderItems(); }
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
$('file').onchange = e => { if (e.target.files[0]) addFile(e.target.files[0]); };
$('search').onclick = search;
$('clear').onclick = () => { items = []; renderItems(); $('results').innerHTML = ''; $('summary').textContent = ''; };
const drop = $('drop');
drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', e => { e.preventDefault(); drop.classList.remove('over'); [...e.dataTransfer.files].forEach(addFile); });
fetch('/health').then(r => r.json()).then(h => {
  $('status').textContent = h.items + ' items, dim ' + h.dim + (h.model ? ', model ' + h.model.name : ', no model (search by id only)');
}).catch(() => { $('status').textContent = 'server unreachable'; });
</script></body></html>
)HTML";
  return page;
}

}  // namespace omnibind::serving
