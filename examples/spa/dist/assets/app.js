// A tiny single page application, no build step: a router on the History
// API, three views, and a JSON API under /api/ that embedded PHP answers.
// fe-php serves this file and app.css as static files (/assets/, priority
// 100) and index.html for every other path (default_backend = "static").
"use strict";

const app = document.getElementById("app");

async function api(path, options = {}) {
  const resp = await fetch("/api/" + path, {
    headers: { "Content-Type": "application/json" },
    ...options,
  });
  const data = resp.status === 204 ? null : await resp.json();
  if (!resp.ok) throw new Error((data && data.error) || resp.statusText);
  return data;
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

const views = {
  async "/"() {
    const list = el("ul", { className: "notes" });
    const input = el("input", { placeholder: "A new note", required: true, maxLength: 200 });
    const form = el("form", {}, input, el("button", { type: "submit" }, "Add"));
    const render = async () => {
      const { notes } = await api("notes");
      list.replaceChildren(...notes.map((n) => {
        const del = el("button", { type: "button" }, "delete");
        del.onclick = async () => { await api("notes/" + n.id, { method: "DELETE" }); render(); };
        return el("li", {}, n.text, del);
      }));
    };
    form.onsubmit = async (e) => {
      e.preventDefault();
      await api("notes", { method: "POST", body: JSON.stringify({ text: input.value }) });
      input.value = "";
      render();
    };
    await render();
    return [el("h1", {}, "Notes"), form, list];
  },

  async "/settings/profile"() {
    const name = el("input", { value: localStorage.getItem("name") || "" });
    name.oninput = () => localStorage.setItem("name", name.value);
    return [el("h1", {}, "Profile"), el("label", {}, "Your name ", name),
      el("p", {}, "A deep link: reload this page and fe-php still answers with index.html.")];
  },

  async "/about"() {
    const status = await api("status");
    return [el("h1", {}, "About"),
      el("p", {}, "The API runs on embedded PHP inside fe-php: PHP_SAPI is ", el("code", {}, status.sapi),
        ", PHP ", status.php, ".")];
  },
};

async function route() {
  const path = location.pathname;
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.pathname === path));
  const view = views[path];
  try {
    app.replaceChildren(...(view ? await view() : [el("h1", {}, "Not found"), el("p", {}, "No page at " + path)]));
  } catch (err) {
    app.replaceChildren(el("p", { className: "error" }, "Error: " + err.message));
  }
}

document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-link]");
  if (!a) return;
  e.preventDefault();
  history.pushState(null, "", a.href);
  route();
});
window.addEventListener("popstate", route);
route();
