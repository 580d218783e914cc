// harness playground: the network diagram, as TF Playground draws it. Features, hidden units and the output are
// nodes; each weight is a link between two of them, its colour the weight's sign (blue positive, orange negative)
// and its width the weight's size; hovering a link shows its value, hovering a node shows it large in the NumPy
// engine's output panel. The weights are the NumPy engine's, from each frame (`frame.weights`, torch's layout:
// layers.k.weight[out, in]).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const diagram = { key: null, links: [] };  // the links drawn, and the layout they were drawn for

function linkWidth(w) { return Math.min(6, 0.5 + 3 * Math.abs(w)); }

function diagramColumns() {  // the nodes, column by column: features (as the server ordered them), units, output
  const s = page.setup;
  if (!s) return null;
  const cols = [s.features.map((f) => document.querySelector(`#feature-${CSS.escape(f.name)} canvas`))];
  s.hidden.forEach((units, k) => cols.push([...document.querySelectorAll(`#layer-${k} canvas`)].slice(0, units)));
  cols.push([$("output-node")]);
  return cols.every((col) => col.every(Boolean)) ? cols : null;
}

function nodeName(col, i) {
  const s = page.setup;
  if (col === 0) return page.options.features[s.features[i].name] || s.features[i].name;
  if (col === s.hidden.length + 1) return "the output";
  return `unit ${i + 1} of hidden layer ${col}`;
}

function drawLinks() {
  const svg = $("links"), box = $("network"), f = page.frame, cols = diagramColumns();
  const weights = f && f.weights;
  const fits = cols && weights && weights.length === cols.length - 1
    && weights.every((w, k) => w.length === cols[k + 1].length && w.every((row) => row.length === cols[k].length));
  if (!fits) { svg.replaceChildren(); diagram.key = null; return; }
  const origin = box.getBoundingClientRect();
  const at = (el, side) => {
    const r = el.getBoundingClientRect();
    return [(side ? r.right : r.left) - origin.left + box.scrollLeft, r.top + r.height / 2 - origin.top + box.scrollTop];
  };
  const key = JSON.stringify(cols.map((c) => c.map((el) => at(el, 0))));
  if (key !== diagram.key) {  // a new layout: draw the links again; else only their colours and widths change
    svg.setAttribute("width", box.scrollWidth);
    svg.setAttribute("height", box.scrollHeight);
    svg.replaceChildren();
    diagram.links = [];
    for (let k = 0; k < weights.length; k++) {
      for (let j = 0; j < cols[k + 1].length; j++) {
        for (let i = 0; i < cols[k].length; i++) {
          const [x1, y1] = at(cols[k][i], 1), [x2, y2] = at(cols[k + 1][j], 0), mid = (x1 + x2) / 2;
          const d = `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
          const line = document.createElementNS(SVG, "path"), hit = document.createElementNS(SVG, "path");
          line.setAttribute("d", d);
          line.setAttribute("class", "link");
          hit.setAttribute("d", d);
          hit.setAttribute("class", "link-hit");
          hit.dataset.link = `${k},${j},${i}`;
          hit.addEventListener("mousemove", (e) => showLinkValue(e, k, j, i));
          hit.addEventListener("mouseleave", hideTooltip);
          svg.append(line, hit);
          diagram.links.push({ line, k, j, i });
        }
      }
    }
    diagram.key = key;
  }
  for (const { line, k, j, i } of diagram.links) {
    const w = weights[k][j][i];
    line.setAttribute("stroke", w >= 0 ? "rgb(8,119,189)" : "rgb(245,147,34)");
    line.setAttribute("stroke-width", linkWidth(w).toFixed(2));
  }
}

function showLinkValue(event, k, j, i) {
  const w = page.frame && page.frame.weights ? page.frame.weights[k][j][i] : null;
  if (w === null || w === undefined) return;
  const tip = $("tooltip");
  tip.textContent = `weight ${fmt(w)}, from ${nodeName(k, i)} to ${nodeName(k + 1, j)} (layers.${k}.weight[${j}, ${i}])`;
  tip.hidden = false;
  tip.style.left = `${event.pageX + 12}px`;
  tip.style.top = `${event.pageY + 12}px`;
}

function hideTooltip() { $("tooltip").hidden = true; }

function hoverNode(node) {  // {layer, unit} or {feature}, or null: what the NumPy panel shows large
  page.hovered = node;
  drawBoundaries();
}

function hoveredImage() {  // the hovered node's values over the plane (bytes), its size and its name; or null
  const h = page.hovered, f = page.frame, s = page.setup;
  if (!h || !f || !s) return null;
  if (h.feature !== undefined) {
    const feature = s.features.find((x) => x.name === h.feature);
    return feature ? { values: bytes(feature.thumb), n: s.thumb, name: `the feature ${page.options.features[h.feature]}` }
      : null;
  }
  const units = f.neurons[h.layer];
  if (!units || !units[h.unit]) return null;
  return { values: bytes(units[h.unit]), n: s.thumb, name: `unit ${h.unit + 1} of hidden layer ${h.layer + 1}` };
}
