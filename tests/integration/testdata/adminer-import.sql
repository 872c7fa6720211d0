-- An SQL file as a user imports it on Adminer's Import page
-- (tests/integration/adminer_test.go): comments of both kinds, statements
-- over several lines, strings holding a semicolon and comment markers,
-- UTF-8, and a trigger in a DELIMITER block. The test appends a few
-- hundred kilobytes of INSERTs, so that the upload is bigger than
-- fe-php's in-memory request buffer.
SET NAMES utf8mb4;

DROP TABLE IF EXISTS `pantry`;
/* The table the checks read back. */
CREATE TABLE `pantry` (
  `id` int NOT NULL AUTO_INCREMENT,
  `item` varchar(100) NOT NULL,
  `note` text,
  `qty` int NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO `pantry` (`item`, `note`, `qty`) VALUES
('crème fraîche', 'keep cold; use within a week', 2),
('yuzu kosho', 'ゆず胡椒 -- not a comment', 1),
('sourdough starter', 'feed daily /* not a comment either */', 1);

DELIMITER ;;
CREATE TRIGGER `pantry_qty` BEFORE INSERT ON `pantry` FOR EACH ROW
BEGIN
  IF NEW.qty < 0 THEN
    SET NEW.qty = 0;
  END IF;
END;;
DELIMITER ;

DROP TABLE IF EXISTS `pantry_bulk`;
CREATE TABLE `pantry_bulk` (
  `id` int NOT NULL,
  `payload` varchar(200) NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
