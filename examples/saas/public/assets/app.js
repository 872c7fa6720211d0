fetch("/api/runtime").then(r => r.json()).then(info => {
  const p = document.createElement("p");
  p.textContent = "API says: " + JSON.stringify(info);
  document.querySelector("main").appendChild(p);
});
