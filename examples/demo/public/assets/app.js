document.getElementById("route").insertAdjacentHTML("beforeend",
  "<br>You are at <code>" + location.pathname.replace(/[<>&]/g, "") + "</code>.");
