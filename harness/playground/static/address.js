// harness playground: the settings in the page's address, so that a reload keeps them and a link shares them.
//
// Every setting is written in the query string (?dataset=spiral&hidden=8,8&features=sin(x1),sin(x2)&...), lists
// joined by commas, with the speed as `speed`. Reading it back checks each value's type against the default's and
// names the control of a value it cannot read; the server checks the rest, as it checks any settings.
"use strict";

const SPEEDS = ["10", "60", "0"];  // the Speed control's choices, in epochs/s (0: as fast as it goes)

function settingsQuery(settings, speed) {  // settings (and the speed) -> "?key=value&..."
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(settings)) q.set(key, Array.isArray(value) ? value.join(",") : String(value));
  q.set("speed", String(speed));
  return `?${q.toString()}`;
}

function readQuery(search, defaults, labels) {
  // "?key=value&..." -> {settings, speed, error}: the defaults overridden by the query's values; `error` names the
  // control of the first value that cannot be read (that value is left at its default).
  const q = new URLSearchParams(search), settings = JSON.parse(JSON.stringify(defaults));
  let speed = null, error = null;
  const refuse = (message) => { if (!error) error = message; };
  for (const [key, text] of q.entries()) {
    if (key === "speed") {
      if (SPEEDS.includes(text)) speed = text;
      else refuse(`Speed: "${text}" is not one of the speeds offered (${SPEEDS.join(", ")} epochs/s; 0: as fast as it goes)`);
      continue;
    }
    if (!(key in defaults)) {
      refuse(`the link names an unknown setting "${key}"; known: ${Object.keys(defaults).join(", ")}`);
      continue;
    }
    const label = labels[key] || key, model = defaults[key];
    if (Array.isArray(model)) {
      const items = text === "" ? [] : text.split(",");
      if (key === "hidden") {
        const units = items.map((u) => (/^\d+$/.test(u.trim()) ? Number(u) : NaN));
        if (units.some(isNaN)) refuse(`${label}: "${text}" is not a list of unit counts such as 8,8`);
        else settings[key] = units;
      } else {
        settings[key] = items;
      }
    } else if (typeof model === "number") {
      const n = text.trim() === "" ? NaN : Number(text);
      if (!isFinite(n)) refuse(`${label}: "${text}" is not a number`);
      else settings[key] = n;
    } else {
      settings[key] = text;
    }
  }
  return { settings, speed, error };
}
