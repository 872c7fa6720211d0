// The storefront's script (served by the static backend): "Add to cart"
// calls the cart API, which embedded PHP answers.
document.querySelectorAll("button[data-add]").forEach((button) => {
  button.addEventListener("click", async () => {
    const resp = await fetch("/api/cart/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ product_id: Number(button.dataset.add), qty: 1 }),
    });
    const data = await resp.json();
    if (!resp.ok) {
      alert(data.error || "could not add to the cart");
      return;
    }
    document.getElementById("cart-count").textContent = data.cart.count;
  });
});
