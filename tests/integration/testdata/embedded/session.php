<?php
session_start();
if (isset($_GET['set'])) {
    $_SESSION['value'] = $_GET['set'];
}
echo json_encode(['id' => session_id(), 'value' => $_SESSION['value'] ?? null]);
